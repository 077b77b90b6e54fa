package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
)

// commits follows one object's writes in etcd itself, through etcd's JSON gateway
// (/v3/watch), so a write is seen when it commits. A watch through the API server reaches its
// watcher somewhere in the fan-out to every agent, up to seconds after the commit, which would
// make "enforcing after publication" look shorter than it is.
// Its []byte fields travel base64-encoded, as the gateway wants them.
type commits struct {
	etcd string
	key  []byte
}

// commit is one committed version of the followed object, with when it was seen.
type commit struct {
	at     time.Time
	policy camv1.TokenPolicy
}

// findKey looks up the etcd key of the API object whose key ends in suffix
// ("/tokenpolicies/ns/name"), whatever prefix the API server stores under.
func findKey(ctx context.Context, etcd, suffix string) ([]byte, error) {
	var resp struct {
		Kvs []struct {
			Key []byte `json:"key"`
		} `json:"kvs"`
	}
	// Every key from "/" up to "0", the character after it: all the API server's keys.
	if err := etcdCall(ctx, etcd, "/v3/kv/range", map[string]any{"key": []byte("/"), "range_end": []byte("0"), "keys_only": true}, &resp); err != nil {
		return nil, err
	}
	for _, kv := range resp.Kvs {
		if strings.HasSuffix(string(kv.Key), suffix) {
			return kv.Key, nil
		}
	}
	return nil, fmt.Errorf("no etcd key ends in %s among %d", suffix, len(resp.Kvs))
}

func etcdCall(ctx context.Context, etcd, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(etcd, "/")+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("etcd %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("etcd %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// watch sends every committed version of the object until ctx ends, then closes the channel.
// The watch is in place when it returns. It is read by a child process (follow), which stamps
// each commit as it arrives: a goroutine of this process would wait for a turn behind the
// thousand agents busy with that very commit, and stamp it up to a second late.
func (c commits) watch(ctx context.Context) (<-chan commit, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, self, "--follow-etcd", c.etcd, "--follow-key", base64.StdEncoding.EncodeToString(c.key))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("follow etcd: %w", err)
	}
	lines := bufio.NewScanner(stdout)
	lines.Buffer(make([]byte, 0, 1<<16), 16<<20)
	if !lines.Scan() || lines.Text() != "ready" {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("follow etcd: no confirmation (%q): %w", lines.Text(), errors.Join(lines.Err(), cmd.Wait()))
	}
	out := make(chan commit, 64)
	go func() {
		defer close(out)
		defer func() { _ = cmd.Wait() }()
		for lines.Scan() {
			stamp, value, ok := strings.Cut(lines.Text(), " ")
			ns, err := strconv.ParseInt(stamp, 10, 64)
			if !ok || err != nil {
				continue
			}
			b, err := base64.StdEncoding.DecodeString(value)
			var p camv1.TokenPolicy
			// Custom resources are stored as JSON.
			if err != nil || json.Unmarshal(b, &p) != nil {
				continue
			}
			select {
			case out <- commit{at: time.Unix(0, ns), policy: p}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// follow is the child process of watch (--follow-etcd): it watches key in etcd and writes
// "ready" once the watch is in place, then a line per committed version, "<unix ns> <base64
// value>", stamped when it arrived.
func follow(ctx context.Context, etcd string, key []byte, w io.Writer) error {
	b, err := json.Marshal(map[string]any{"create_request": map[string]any{"key": key}})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(etcd, "/")+"/v3/watch", bytes.NewReader(b))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("etcd watch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("etcd watch: %s", resp.Status)
	}
	type message struct {
		Result struct {
			Created bool `json:"created"`
			Events  []struct {
				Kv struct {
					Value []byte `json:"value"`
				} `json:"kv"`
			} `json:"events"`
		} `json:"result"`
	}
	lines := bufio.NewScanner(resp.Body)
	lines.Buffer(make([]byte, 0, 1<<16), 16<<20)
	// The first message confirms the watch: until then a write could be missed.
	if !lines.Scan() {
		return fmt.Errorf("etcd watch: closed before confirming: %w", errors.Join(lines.Err(), io.ErrUnexpectedEOF))
	}
	var first message
	if err := json.Unmarshal(lines.Bytes(), &first); err != nil || !first.Result.Created {
		return fmt.Errorf("etcd watch: unexpected first message %q", lines.Text())
	}
	if _, err := fmt.Fprintln(w, "ready"); err != nil {
		return err
	}
	for lines.Scan() {
		at := time.Now()
		var m message
		if err := json.Unmarshal(lines.Bytes(), &m); err != nil {
			continue
		}
		for _, ev := range m.Result.Events {
			// A deletion has no value.
			if len(ev.Kv.Value) == 0 {
				continue
			}
			if _, err := fmt.Fprintf(w, "%d %s\n", at.UnixNano(), base64.StdEncoding.EncodeToString(ev.Kv.Value)); err != nil {
				return err
			}
		}
	}
	return lines.Err()
}
