package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/camfleet/camfleet/agent/api"
	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/testkit"
	"github.com/camfleet/camfleet/internal/token"
)

// outageAgent is an agent started on its own, stopped by stop.
type outageAgent struct {
	agent   *Agent
	metrics *Metrics
	reg     *prometheus.Registry
	url     string
	stop    func()
}

func startOutageAgent(t *testing.T, cfg *rest.Config, node, dir string, log logr.Logger) outageAgent {
	t.Helper()
	reg := prometheus.NewRegistry()
	var a *Agent
	m, err := NewMetrics(reg, func() *Agent { return a })
	if err != nil {
		t.Fatal(err)
	}
	a, err = New(cfg, Options{NodeName: node, StateDir: dir, Clock: clock.RealClock{}, Log: log, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	s := &api.Server{Cameras: a, Keys: a.Keys, Clock: clock.RealClock{}, Log: log, Ready: a.Ready}
	srv := httptest.NewServer(s.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Start(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		srv.Close()
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("agent %s stopped with %v", node, err)
		}
	}
	t.Cleanup(stop)
	return outageAgent{agent: a, metrics: m, reg: reg, url: srv.URL, stop: stop}
}

// unreachable is a config for an API server that refuses every connection: a local port
// that was just closed.
func unreachable(t *testing.T) *rest.Config {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return &rest.Config{Host: "http://" + addr, Timeout: 2 * time.Second}
}

func signID(t *testing.T, ns, id string, k token.SigningKey) string {
	t.Helper()
	now := time.Now()
	tok, err := token.Sign(token.Claims{Issuer: "https://tokens.test/policies/" + ns + "/home", Subject: "alice", Audience: []string{"camfleet"},
		IssuedAt: now, Expiry: now.Add(10 * time.Minute), ID: id, Perms: []string{"camera:snapshot:" + ns + "/*"}}, token.TypeAccess, k)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 64<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String()
}

// TestAgentEnforcesTheStateFileThroughAnOutage: an agent loads a policy (a key and a revoked
// token ID) and keeps it under --state-dir. A new agent whose API server is unreachable
// serves the stored camera and enforces that file: a valid token passes, revoked IDs and an
// unknown key are refused, and /readyz and the metrics say it serves from the state file. With a corrupted file it
// refuses every token and says why; once the API server answers, the live material wins.
func TestAgentEnforcesTheStateFileThroughAnOutage(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	startController(t, ns)
	p := &camv1.TokenPolicy{Spec: camv1.TokenPolicySpec{Audience: []string{"camfleet"}, RevokedTokenIDs: []string{"stolen"}}}
	p.Namespace, p.Name = ns, "home"
	if err := env.Client.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	env.Nodes(t, "pi-o")
	if err := env.Client.Create(ctx, testCamera(ns, "porch", "pi-o")); err != nil {
		t.Fatal(err)
	}
	policy := types.NamespacedName{Namespace: ns, Name: "home"}
	dir := t.TempDir()
	cfg := agentIdentity(t, ns, "camfleet-agent-pi-o")
	first := startOutageAgent(t, cfg, "pi-o", dir, testr.New(t))
	testkit.Eventually(t, settle, "a key to sign", func() (bool, string) { return activeKey(t, ns) != "", "no active key in the policy's status" })
	k := signingKey(t, ns)
	valid, revoked := signID(t, ns, "fine", k), signID(t, ns, "stolen", k)
	stranger, err := token.GenerateSigningKey(token.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	stranger.KeyID = k.KeyID // a key it has never seen, even under a known key ID
	forged := signID(t, ns, "forged", stranger)
	testkit.Eventually(t, settle, "the first agent to enforce the policy", func() (bool, string) {
		_, e1 := first.agent.Keys.Verify(policy, valid)
		_, e2 := first.agent.Keys.Verify(policy, revoked)
		return e1 == nil && e2 != nil, fmt.Sprintf("valid token: %v, revoked token: %v", e1, e2)
	})
	// A revocation that changes no key reaches the state file too.
	leaked := signID(t, ns, "leaked", k)
	cur := &camv1.TokenPolicy{}
	if err := env.Client.Get(ctx, policy, cur); err != nil {
		t.Fatal(err)
	}
	base := cur.DeepCopy()
	cur.Spec.RevokedTokenIDs = append(cur.Spec.RevokedTokenIDs, "leaked")
	if err := env.Client.Patch(ctx, cur, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, settle, "the first agent to refuse the newly revoked ID", func() (bool, string) {
		_, err := first.agent.Keys.Verify(policy, leaked)
		return err != nil, "the token of a revoked ID passes"
	})
	testkit.Eventually(t, settle, "the state file to hold both revoked IDs", func() (bool, string) {
		st, err := readState(dir)
		if err != nil {
			return false, err.Error()
		}
		ps := st.Policies
		for _, p := range ps {
			if p.Name == "home" && p.Status.Verification != nil {
				ids := strings.Join(p.Status.Verification.RevokedTokenIDs, ",")
				return strings.Contains(ids, "stolen") && strings.Contains(ids, "leaked"), "revoked IDs in the file: " + ids
			}
		}
		return false, fmt.Sprintf("%d policies, none named home", len(ps))
	})
	if s, _ := first.agent.VerificationSource(); s != SourceAPIServer {
		t.Errorf("the first agent's source is %s", s)
	}
	first.stop()

	check := func(a outageAgent, tok string, pass bool) {
		t.Helper()
		_, err := a.agent.Keys.Verify(policy, tok)
		if (err == nil) != pass {
			t.Errorf("token passes: %v (%v), want %v", err == nil, err, pass)
		}
	}
	t.Run("outage with the state file", func(t *testing.T) {
		logs := &testkit.LogBuffer{}
		a := startOutageAgent(t, unreachable(t), "pi-o", dir, logs.Logger())
		check(a, valid, true)
		check(a, revoked, false)
		check(a, leaked, false)
		check(a, forged, false)
		// The camera of the state file runs, and its routes enforce the stored material.
		na := nodeAgent{agent: a.agent, url: a.url}
		testkit.Eventually(t, settle, "a snapshot of the stored camera with a valid token", func() (bool, string) {
			return answers(t, na, ns, "porch", valid, http.StatusOK)
		})
		for what, tok := range map[string]string{"revoked at load": revoked, "revoked later": leaked, "forged": forged} {
			if got := snapshotStatus(t, na, ns, "porch", tok); got != http.StatusUnauthorized {
				t.Errorf("a %s token answered %d", what, got)
			}
		}
		if s, why := a.agent.VerificationSource(); s != SourceStateFile {
			t.Errorf("source %s (%s)", s, why)
		}
		if code, body := httpGet(t, a.url+"/readyz"); code != http.StatusOK {
			t.Errorf("/readyz answered %d %s", code, body)
		}
		if err := testutil.GatherAndCompare(a.reg, strings.NewReader(sourceMetric(SourceStateFile)), "camfleet_agent_verification_source"); err != nil {
			t.Error(err)
		}
		if !strings.Contains(logs.String(), "Enforcing the verification material of the state file") {
			t.Errorf("logs: %s", logs.String())
		}
		a.stop()
		if _, err := os.Stat(filepath.Join(dir, StateFile)); err != nil {
			t.Errorf("the agent in the outage lost the state file: %v", err)
		}
	})

	corrupt := t.TempDir()
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	altered := strings.Replace(string(b), `"stolen"`, `"stolex"`, 1)
	if altered == string(b) {
		t.Fatal("the state file does not hold the revoked ID verbatim")
	}
	if err := os.WriteFile(filepath.Join(corrupt, StateFile), []byte(altered), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("outage with a corrupted state file", func(t *testing.T) {
		logs := &testkit.LogBuffer{}
		a := startOutageAgent(t, unreachable(t), "pi-o", corrupt, logs.Logger())
		check(a, valid, false)
		check(a, revoked, false)
		check(a, forged, false)
		if n := len(a.agent.List()); n != 0 {
			t.Errorf("the agent runs %d cameras from a refused file", n)
		}
		if s, why := a.agent.VerificationSource(); s != SourceNone || !strings.Contains(why, "checksum") {
			t.Errorf("source %s (%s)", s, why)
		}
		if code, body := httpGet(t, a.url+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "checksum") {
			t.Errorf("/readyz answered %d %s", code, body)
		}
		if got := testutil.ToFloat64(a.metrics.StateLoadFailures.WithLabelValues(StateChecksum)); got != 1 {
			t.Errorf("checksum failures counted: %v", got)
		}
		if err := testutil.GatherAndCompare(a.reg, strings.NewReader(sourceMetric(SourceNone)), "camfleet_agent_verification_source"); err != nil {
			t.Error(err)
		}
		n := 0
		for _, l := range logs.Lines() {
			if strings.Contains(l, "No usable verification state") && strings.Contains(l, `"reason"="checksum"`) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d log lines say why, want 1: %s", n, logs.String())
		}
	})

	t.Run("the API server answers again", func(t *testing.T) {
		a := startOutageAgent(t, cfg, "pi-o", corrupt, testr.New(t))
		testkit.Eventually(t, settle, "the live material", func() (bool, string) {
			s, _ := a.agent.VerificationSource()
			_, e1 := a.agent.Keys.Verify(policy, valid)
			return s == SourceAPIServer && e1 == nil, fmt.Sprintf("source %s, valid token: %v", s, e1)
		})
		check(a, revoked, false)
		check(a, forged, false)
		testkit.Eventually(t, settle, "a sound state file again", func() (bool, string) {
			_, err := readState(corrupt)
			return err == nil, fmt.Sprint(err)
		})
	})

	t.Run("a camera deleted during the outage stops when the API server answers", func(t *testing.T) {
		cam := &camv1.Camera{}
		cam.Namespace, cam.Name = ns, "porch"
		if err := env.Client.Delete(ctx, cam); err != nil {
			t.Fatal(err)
		}
		a := startOutageAgent(t, cfg, "pi-o", dir, testr.New(t))
		testkit.Eventually(t, settle, "the stored camera to stop", func() (bool, string) {
			s, _ := a.agent.VerificationSource()
			n := len(a.agent.List())
			return s == SourceAPIServer && n == 0, fmt.Sprintf("source %s, %d cameras", s, n)
		})
		testkit.Eventually(t, settle, "the state file without the camera", func() (bool, string) {
			st, err := readState(dir)
			if err != nil {
				return false, err.Error()
			}
			return len(st.Cameras) == 0, fmt.Sprintf("%d cameras in the file", len(st.Cameras))
		})
	})
}

func sourceMetric(cur string) string {
	var b strings.Builder
	b.WriteString("# HELP camfleet_agent_verification_source 1 for where the verification material enforced comes from: apiserver, statefile (control-plane outage) or none (every token refused).\n# TYPE camfleet_agent_verification_source gauge\n")
	for _, s := range []string{SourceAPIServer, SourceNone, SourceStateFile} {
		v := 0
		if s == cur {
			v = 1
		}
		fmt.Fprintf(&b, "camfleet_agent_verification_source{source=%q} %d\n", s, v)
	}
	return b.String()
}
