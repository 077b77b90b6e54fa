package cli

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

func TestParseNamespaces(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		bad  bool
	}{
		{"", nil, false},
		{"cams", []string{"cams"}, false},
		{" cams , garden,,cams ", []string{"cams", "garden"}, false},
		{"cams,Garden", nil, true},
		{"cams,garden/x", nil, true},
		{"-cams", nil, true},
	} {
		got, err := ParseNamespaces("watch-namespaces", tc.in)
		if (err != nil) != tc.bad || !slices.Equal(got, tc.want) {
			t.Errorf("ParseNamespaces(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func TestPolicyIsWatched(t *testing.T) {
	home := types.NamespacedName{Namespace: "cams", Name: "home"}
	for _, tc := range []struct {
		policy     types.NamespacedName
		namespaces []string
		ok         bool
	}{
		{home, nil, true},
		{home, []string{"garden", "cams"}, true},
		{home, []string{"garden"}, false},
		{types.NamespacedName{}, []string{"garden"}, true},
		{types.NamespacedName{Name: "home"}, []string{"garden"}, true},
	} {
		if err := PolicyIsWatched("default-token-policy", tc.policy, tc.namespaces); (err == nil) != tc.ok {
			t.Errorf("PolicyIsWatched(%s, %q) = %v, want ok %v", tc.policy, tc.namespaces, err, tc.ok)
		}
	}
}

func TestScope(t *testing.T) {
	for _, tc := range []struct {
		policy, namespaces string
		want               types.NamespacedName
		wantNS             []string
		bad                bool
	}{
		{"", "", types.NamespacedName{}, nil, false},
		{"cams/home", "cams,garden", types.NamespacedName{Namespace: "cams", Name: "home"}, []string{"cams", "garden"}, false},
		{"cams/home", "garden", types.NamespacedName{}, nil, true},                        // the default outside the watched namespaces
		{"home", "garden", types.NamespacedName{Name: "home"}, []string{"garden"}, false}, // each namespace's own
		{"a/b/c", "", types.NamespacedName{}, nil, true},                                  // not namespace/name
		{"", "Cams", types.NamespacedName{}, nil, true},
	} {
		p, ns, err := Scope(tc.policy, tc.namespaces)
		if (err != nil) != tc.bad || p != tc.want || !slices.Equal(ns, tc.wantNS) {
			t.Errorf("Scope(%q, %q) = %v, %q, %v; want %v, %q, error %v", tc.policy, tc.namespaces, p, ns, err, tc.want, tc.wantNS, tc.bad)
		}
	}
}

func TestNamespaceCaches(t *testing.T) {
	if m := NamespaceCaches(nil); m != nil {
		t.Errorf("no namespaces: %v, want nil (every namespace)", m)
	}
	m := NamespaceCaches([]string{"cams", "garden"})
	if _, ok := m["cams"]; !ok || len(m) != 2 {
		t.Errorf("two namespaces: %v", m)
	}
}

func TestParsePolicy(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want types.NamespacedName
		bad  bool
	}{
		{"", types.NamespacedName{}, false},
		{"cams/home", types.NamespacedName{Namespace: "cams", Name: "home"}, false},
		{"home", types.NamespacedName{Name: "home"}, false},
		{"/home", types.NamespacedName{}, true},
		{"cams/", types.NamespacedName{}, true},
		{"a/b/c", types.NamespacedName{}, true},
	} {
		got, err := ParsePolicy("default-token-policy", tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParsePolicy(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func TestProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.Error(w, "no", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	if err := Probe(srv.URL + "/healthz"); err != nil {
		t.Errorf("a 200 fails the probe: %v", err)
	}
	if err := Probe(srv.URL + "/other"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("a 503 passes the probe: %v", err)
	}
}
