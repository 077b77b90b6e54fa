// Command requestbench measures the agent's whole request path for an authenticated call:
// POST /api/ack served by the agent's real API handler (api.Server.Handler: access log,
// routing, the bearer token verified through the keyring and its cache, the permission
// check, the ack) over a loopback listener, against the same route on the same kind of mux
// and listener with a handler that does the same work without authentication. Clients use
// keep-alive connections, one token per client, as the microdot seed's page does.
//
//	go run ./hack/requestbench                     # 5 rounds of 2 s per handler
//	go run ./hack/requestbench -rounds 3 -duration 1s -clients 8
//
// The clients run in a child process (this program started again with -load), so that the
// CPU time of this process, read with getrusage over each interval, is the server's alone:
// requests per CPU-second is the figure a node's CPU budget cares about. The two handlers
// alternate within every round, and each round prints one line per handler in the format of
// `go test -bench` (units req/s and req/cpu-s), which hack/gobench pairs by round.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/camfleet/camfleet/agent/api"
	"github.com/camfleet/camfleet/agent/camera"
	"github.com/camfleet/camfleet/agent/keyring"
	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/jsonhttp"
	"github.com/camfleet/camfleet/internal/token"
)

const (
	issuer  = "https://tokens.bench/policies/cams/home"
	subject = "alice"
	ackBody = `{"count": 1}`
)

var policyKey = types.NamespacedName{Namespace: "cams", Name: "home"}

func main() {
	rounds := flag.Int("rounds", 5, "rounds, each measuring both handlers")
	duration := flag.Duration("duration", 2*time.Second, "measured interval per handler and round")
	warmup := flag.Duration("warmup", 500*time.Millisecond, "load before each interval, not measured")
	clients := flag.Int("clients", 8, "concurrent keep-alive clients")
	load := flag.String("load", "", "internal: act as the load generator against this URL, tokens on standard input")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("requestbench: ")

	if *load != "" {
		if err := generateLoad(*load); err != nil {
			log.Fatal(err)
		}
		return
	}
	if err := run(*rounds, *clients, *duration, *warmup); err != nil {
		log.Fatal(err)
	}
}

// counted serves h and counts the requests it finished, which is cheaper and exacter than
// asking the load generator: both handlers get the same counter.
type counted struct {
	h http.Handler
	n atomic.Int64
}

func (c *counted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.h.ServeHTTP(w, r)
	c.n.Add(1)
}

func run(rounds, clients int, duration, warmup time.Duration) error {
	agent, tokens, err := agentHandler(clients)
	if err != nil {
		return err
	}
	variants := []struct {
		name string
		h    *counted
	}{
		{"BenchmarkAckRequest/noauth", &counted{h: noAuthHandler(agent.cams)}},
		{"BenchmarkAckRequest/auth", &counted{h: agent.handler}},
	}
	urls := make([]string, len(variants))
	for i, v := range variants {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		srv := &http.Server{Handler: v.h, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		urls[i] = "http://" + ln.Addr().String() + "/api/ack"
	}

	// Check both answer the same before measuring anything.
	for i, v := range variants {
		if err := checkAck(urls[i], tokens[0]); err != nil {
			return fmt.Errorf("%s: %w", v.name, err)
		}
	}

	fmt.Printf("goos: linux\npkg: github.com/camfleet/camfleet/hack/requestbench\n")
	for round := range rounds {
		for k := range variants {
			// Alternate which handler goes first, so that neither is always measured on a
			// machine warmed (or loaded) by the other.
			i := k
			if round%2 == 1 {
				i = len(variants) - 1 - k
			}
			v := variants[i]
			n, cpu, wall, err := measure(urls[i], v.h, tokens, warmup, duration)
			if err != nil {
				return fmt.Errorf("%s round %d: %w", v.name, round+1, err)
			}
			fmt.Printf("%s\t%d\t%.0f ns/op\t%.0f req/s\t%.0f req/cpu-s\n", v.name, n,
				float64(wall.Nanoseconds())/float64(n), float64(n)/wall.Seconds(), float64(n)/cpu.Seconds())
		}
	}
	return nil
}

// measure starts the load generator against url, and counts the requests h finished and
// this process's CPU time over one interval after the warm-up.
func measure(url string, h *counted, tokens []string, warmup, duration time.Duration) (int64, time.Duration, time.Duration, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("find this program: %w", err)
	}
	cmd := exec.Command(self, "-load", url)
	cmd.Stdin = strings.NewReader(strings.Join(tokens, "\n") + "\n")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, fmt.Errorf("start the load generator: %w", err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	time.Sleep(warmup)
	n0, cpu0, t0 := h.n.Load(), cpuTime(), time.Now()
	time.Sleep(duration)
	n1, cpu1, t1 := h.n.Load(), cpuTime(), time.Now()
	if n1 == n0 {
		return 0, 0, 0, errors.New("no request was served")
	}
	return n1 - n0, cpu1 - cpu0, t1.Sub(t0), nil
}

// cpuTime is the user and system time of this process, not of its children.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		log.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// agent is the agent's API as cmd/camfleet-agent wires it, with one camera under one policy.
type agent struct {
	handler http.Handler
	cams    *cameras
}

// agentHandler builds the agent's API and signs one access token per client.
func agentHandler(clients int) (*agent, []string, error) {
	clk := clock.RealClock{}
	signer, err := token.GenerateSigningKey(token.EdDSA)
	if err != nil {
		return nil, nil, fmt.Errorf("signing key: %w", err)
	}
	ks, err := token.NewKeySet(signer.PublicKey())
	if err != nil {
		return nil, nil, fmt.Errorf("key set: %w", err)
	}
	jwks, err := ks.MarshalJWKS()
	if err != nil {
		return nil, nil, fmt.Errorf("JWKS: %w", err)
	}
	pol := &camv1.TokenPolicy{}
	pol.Namespace, pol.Name = policyKey.Namespace, policyKey.Name
	pol.Spec.Audience = []string{"camfleet"}
	pol.Status.Issuer = issuer
	pol.Status.ActiveKeyID = signer.KeyID
	pol.Status.Verification = &camv1.VerificationStatus{JWKS: string(jwks)}
	keys := keyring.New(clk)
	if err := keys.Update(pol); err != nil {
		return nil, nil, fmt.Errorf("load the policy's keys: %w", err)
	}

	key := types.NamespacedName{Namespace: "cams", Name: "front"}
	spec := camv1.CameraSpec{NodeName: "pi-1", Source: camv1.CameraSource{Type: camv1.SourceTestPattern, FPS: 10}, Stream: camv1.StreamSpec{MaxClients: 3}}
	// The camera is not started: /api/ack only records acks on its events.
	cams := &cameras{cam: camera.New(key, spec, clk, logr.Discard(), camera.Hooks{})}
	srv := &api.Server{Cameras: cams, Keys: keys, Clock: clk, Log: logr.Discard(), AuthResults: api.NewAuthResults()}

	var tokens []string
	now := time.Now()
	for range clients {
		id, err := token.NewID()
		if err != nil {
			return nil, nil, fmt.Errorf("token ID: %w", err)
		}
		c := token.Claims{Issuer: issuer, Subject: subject, Audience: []string{"camfleet"}, IssuedAt: now, NotBefore: now,
			Expiry: now.Add(time.Hour), ID: id, Perms: []string{"camera:stream,snapshot,events:cams/*", "alert:ack:cams/*"}}
		tok, err := token.Sign(c, token.TypeAccess, signer)
		if err != nil {
			return nil, nil, fmt.Errorf("sign a token: %w", err)
		}
		tokens = append(tokens, tok)
	}
	return &agent{handler: srv.Handler(), cams: cams}, tokens, nil
}

// cameras is one running camera under one policy.
type cameras struct{ cam *camera.Camera }

func (c *cameras) List() []*camera.Camera { return []*camera.Camera{c.cam} }

func (c *cameras) Get(k types.NamespacedName) (*camera.Camera, bool) {
	return c.cam, k == c.cam.Key
}

func (c *cameras) PolicyOf(types.NamespacedName) types.NamespacedName { return policyKey }

// noAuthHandler is /api/ack without authentication: the same kind of mux behind the same
// JSON error wrapper and an access log like the agent's, reading the same body, acking the
// same camera's events and writing the same bytes. What it lacks against the agent's is the
// token check, its metric and the permission check.
func noAuthHandler(cams *cameras) http.Handler {
	clk := clock.RealClock{}
	lg := logr.Discard()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/ack", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Count  *int   `json:"count"`
			Camera string `json:"camera"`
		}
		r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Count == nil {
			jsonhttp.Error(w, http.StatusBadRequest, "missing count")
			return
		}
		for _, c := range cams.List() {
			c.Events.Ack(subject, *body.Count, clk.Now())
		}
		user, _ := json.Marshal(subject)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"ok": true, "user": ` + string(user) + `}`))
	})
	h := jsonhttp.Mux(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := clk.Now()
		h.ServeHTTP(w, r)
		lg.V(1).Info("Request", "method", r.Method, "path", r.URL.Path, "duration", clk.Since(start).String())
	})
}

// checkAck makes sure url answers a valid ack as the agent does.
func checkAck(url, tok string) error {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(ackBody))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if want := `{"ok": true, "user": "` + subject + `"}`; resp.StatusCode != http.StatusOK || string(b) != want {
		return fmt.Errorf("ack answered %d %q, want 200 %q", resp.StatusCode, b, want)
	}
	return nil
}

// generateLoad runs one keep-alive client per token read from standard input, each posting
// acks to url back to back, until the process is ended.
func generateLoad(url string) error {
	var tokens []string
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if t := strings.TrimSpace(sc.Text()); t != "" {
			tokens = append(tokens, t)
		}
	}
	if len(tokens) == 0 {
		return errors.New("no tokens on standard input")
	}
	tr := &http.Transport{MaxIdleConnsPerHost: len(tokens), DisableCompression: true}
	client := &http.Client{Transport: tr}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errs := make(chan error, len(tokens))
	var wg sync.WaitGroup
	for _, tok := range tokens {
		wg.Go(func() {
			body := strings.NewReader(ackBody)
			for ctx.Err() == nil {
				body.Reset(ackBody)
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
				if err != nil {
					errs <- err
					return
				}
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("ack answered %s", resp.Status)
					return
				}
			}
		})
	}
	// Runs until the parent ends it; a client that fails ends the load early, which the
	// parent sees as fewer requests, so say why.
	err := <-errs
	cancel()
	wg.Wait()
	return fmt.Errorf("load generator: %w", err)
}
