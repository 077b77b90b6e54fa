package main

import (
	"bytes"
	"context"
	"net/http"
	"os/exec"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/testkit"
)

// TestWatchNamespacesConfinesTheController runs the real binary with --watch-namespaces: it
// reconciles a policy in the watched namespace and its token service serves it, while a
// policy in another namespace, created first, is neither reconciled nor served.
func TestWatchNamespacesConfinesTheController(t *testing.T) {
	bin := testkit.Build(t, "", ".", name)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	watched, other := env.Namespace(t), env.Namespace(t)
	policy := func(ns string) *camv1.TokenPolicy {
		p := &camv1.TokenPolicy{Spec: camv1.TokenPolicySpec{Roles: []camv1.Role{{Name: "viewer", Permissions: []camv1.Permission{"camera:*"}}}}}
		p.Name, p.Namespace = "home", ns
		if err := env.Client.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// The other namespace's policy comes first, so a controller that watched it would meet it
	// before the watched one.
	ignored, served := policy(other), policy(watched)

	metrics, probes, tokens := testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t)
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--kubeconfig", env.Kubeconfig, "--metrics-bind-address", metrics, "--health-probe-bind-address", probes,
		"--token-service-bind-address", tokens, "--token-service-url", "http://"+tokens, "--watch-namespaces", watched)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("controller output:\n%s", logs.String())
		}
	}()

	for served.Status.Verification == nil {
		select {
		case <-ctx.Done():
			t.Fatal("the policy in the watched namespace was never reconciled")
		case <-time.After(100 * time.Millisecond):
		}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(served), served); err != nil {
			t.Fatal(err)
		}
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(ignored), ignored); err != nil {
		t.Fatal(err)
	}
	if ignored.Status.Verification != nil || len(ignored.Status.Conditions) > 0 {
		t.Errorf("the policy in the unwatched namespace was reconciled: %+v", ignored.Status)
	}
	if body := get(ctx, t, "http://"+tokens+"/policies/"+watched+"/home/jwks.json"); body != served.Status.Verification.JWKS {
		t.Errorf("JWKS served for the watched policy: %s", body)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+tokens+"/policies/"+other+"/home/jwks.json", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("JWKS of the policy in the unwatched namespace: %d, want 404", resp.StatusCode)
	}
}
