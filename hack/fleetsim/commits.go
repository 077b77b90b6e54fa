package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
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
// The watch is in place when it returns.
func (c commits) watch(ctx context.Context) (<-chan commit, error) {
	b, err := json.Marshal(map[string]any{"create_request": map[string]any{"key": c.key}})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.etcd, "/")+"/v3/watch", bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("etcd watch: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("etcd watch: %s", resp.Status)
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
		resp.Body.Close()
		return nil, fmt.Errorf("etcd watch: no confirmation: %v", lines.Err())
	}
	var first message
	if err := json.Unmarshal(lines.Bytes(), &first); err != nil || !first.Result.Created {
		resp.Body.Close()
		return nil, fmt.Errorf("etcd watch: unexpected first message %q", lines.Text())
	}
	out := make(chan commit, 64)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		for lines.Scan() {
			at := time.Now()
			var m message
			if err := json.Unmarshal(lines.Bytes(), &m); err != nil {
				continue
			}
			for _, ev := range m.Result.Events {
				var p camv1.TokenPolicy
				// Custom resources are stored as JSON; a deletion has no value.
				if len(ev.Kv.Value) == 0 || json.Unmarshal(ev.Kv.Value, &p) != nil {
					continue
				}
				select {
				case out <- commit{at: at, policy: p}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}
