package testenv

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
)

// Main starts one control plane for a test package, runs its tests, and stops it. A package
// calls it from TestMain and keeps the Env in a package variable.
func Main(m *testing.M, env **Env) {
	e, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		os.Exit(1)
	}
	*env = e
	code := m.Run()
	if err := e.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "testenv: stop:", err)
	}
	os.Exit(code)
}

// Namespace makes a fresh namespace for one test and, if the test fails, logs the camfleet
// objects and Events in it so the failure explains itself.
func (e *Env) Namespace(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	ns, err := e.CreateNamespace(ctx, namespacePrefix(t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			e.Dump(t, ns)
		}
	})
	return ns
}

// Nodes makes sure Node objects of these names exist, as the kubelets of camera nodes would
// keep them: the controller reports a Camera whose node does not exist as NodeNotFound. Nodes
// are cluster-wide and outlive the test; other tests may share the names.
func (e *Env) Nodes(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		node := &corev1.Node{}
		node.Name = n
		if err := e.Client.Create(context.Background(), node); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
}

// Dump logs every camfleet object, owned Secret name, ConfigMap and Event in a namespace.
func (e *Env) Dump(t testing.TB, ns string) {
	t.Helper()
	ctx := context.Background()
	lists := []client.ObjectList{&camv1.TokenPolicyList{}, &camv1.CameraList{}, &camv1.AccessTokenList{}, &corev1.ConfigMapList{}, &corev1.EventList{}}
	for _, l := range lists {
		if err := e.Client.List(ctx, l, client.InNamespace(ns)); err != nil {
			t.Logf("dump %T: %v", l, err)
			continue
		}
		out, _ := yaml.Marshal(l)
		t.Logf("--- %T in %s:\n%s", l, ns, out)
	}
	// Secrets are listed by name only: their data is key material.
	var secrets corev1.SecretList
	if err := e.Client.List(ctx, &secrets, client.InNamespace(ns)); err == nil {
		for _, s := range secrets.Items {
			t.Logf("--- Secret %s/%s type=%s keys=%d rv=%s", s.Namespace, s.Name, s.Type, len(s.Data), s.ResourceVersion)
		}
	}
}

// namespacePrefix turns a test name into the start of a valid namespace name.
func namespacePrefix(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
		if b.Len() >= 40 {
			break
		}
	}
	p := strings.Trim(b.String(), "-")
	if p == "" {
		return "test"
	}
	return p
}
