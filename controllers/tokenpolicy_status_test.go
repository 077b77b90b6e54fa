package controllers

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/yaml"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/keys"
	"github.com/camfleet/camfleet/internal/publication"
)

func camera(node string, suspend bool, kids ...string) *camv1.Camera {
	c := &camv1.Camera{Spec: camv1.CameraSpec{NodeName: node, Suspend: suspend}}
	c.Status.LoadedKeyIDs = kids
	return c
}

func TestAgentsHolding(t *testing.T) {
	cases := []struct {
		name    string
		cams    []*camv1.Camera
		total   int
		lagging []string
	}{
		{"no cameras", nil, 0, nil},
		{"cameras nobody serves yet", []*camv1.Camera{camera("pi-1", false)}, 0, nil},
		{"one agent holds it", []*camv1.Camera{camera("pi-1", false, "old", "new")}, 1, nil},
		{"one agent lags", []*camv1.Camera{camera("pi-1", false, "old", "new"), camera("pi-2", false, "old")}, 2, []string{"pi-2"}},
		{"a node counts once", []*camv1.Camera{camera("pi-1", false, "new"), camera("pi-1", false, "new"), camera("pi-1", false, "new")}, 1, nil},
		{"a node lags if any of its cameras does", []*camv1.Camera{camera("pi-1", false, "new"), camera("pi-1", false, "old")}, 1, []string{"pi-1"}},
		{"suspended cameras do not count", []*camv1.Camera{camera("pi-1", true, "old"), camera("pi-2", false, "new")}, 1, nil},
		{"laggers sorted", []*camv1.Camera{camera("pi-9", false, "old"), camera("pi-10", false, "old"), camera("pi-2", false, "old")}, 3, []string{"pi-10", "pi-2", "pi-9"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := agentsHolding(tc.cams, "new")
			if got.Total != tc.total || !slices.Equal(got.Lagging, tc.lagging) {
				t.Fatalf("agentsHolding = %+v, want total %d lagging %v", got, tc.total, tc.lagging)
			}
		})
	}
}

func TestPolicyConditions(t *testing.T) {
	k := &keys.Key{ID: "kid-1", State: camv1.KeyActive, Activates: t0}
	withActive := &keys.Set{Keys: []*keys.Key{k}}
	p := &camv1.TokenPolicy{}
	p.Name = "home"
	cases := []struct {
		name string
		run  policyRun
		err  error
		want map[string]string // type -> status/reason
	}{
		{"healthy", policyRun{set: withActive}, nil, map[string]string{"Ready": "True/Succeeded", "KeysPublished": "True/Published"}},
		{"invalid spec", policyRun{set: withActive}, reconcile.TerminalError(refuse(camv1.ReasonInvalidSpec, "spec.rsaKeyBits must be at least 2048")), map[string]string{"Ready": "False/InvalidSpec", "Stalled": "True/InvalidSpec"}},
		{"transient error", policyRun{set: withActive}, errors.New("etcd hiccup"), map[string]string{"Ready": "False/ReconcileFailed", "Reconciling": "True/Progressing"}},
		{"no key yet", policyRun{set: &keys.Set{}}, nil, map[string]string{"Ready": "False/NoActiveKey", "Reconciling": "True/Progressing"}},
		{"repaired", policyRun{set: withActive, problems: []keys.Problem{{Reason: "KeyInvalid", Message: "key x dropped"}}}, nil, map[string]string{"Ready": "False/KeyInvalid", "KeysPublished": "True/Published", "Reconciling": "True/Progressing"}},
		{"waiting for agents", policyRun{set: withActive, waiting: keys.Decision{Reason: keys.ReasonWaitingForAgents, Message: "pi-1"}}, nil, map[string]string{"Ready": "True/Succeeded", "KeysPublished": "True/Published", "AgentsInSync": "False/WaitingForAgents"}},
		{"agents lag behind the active key", policyRun{set: withActive, cameras: []*camv1.Camera{camera("pi-1", false, "other")}}, nil, map[string]string{"Ready": "True/Succeeded", "KeysPublished": "True/Published", "AgentsInSync": "False/AgentsLagging"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run := tc.run
			got := policyConditions(p, &run, tc.err)
			if len(got) != len(tc.want) {
				t.Fatalf("conditions %+v, want %v", got, tc.want)
			}
			for typ, sr := range tc.want {
				c := meta.FindStatusCondition(got, typ)
				if c == nil || string(c.Status)+"/"+c.Reason != sr || c.Message == "" {
					t.Errorf("%s = %+v, want %s with a message", typ, c, sr)
				}
			}
		})
	}
}

// TestSessionStoreCondition: a <policy>-sessions ConfigMap the policy does not own turns
// SessionStoreAvailable False with a message naming it and what to do; none, or the store the
// token service made, leaves the condition absent.
func TestSessionStoreCondition(t *testing.T) {
	p := &camv1.TokenPolicy{}
	p.Name, p.UID = "home", "uid-home"
	store := func(labels map[string]string, owner types.UID) *corev1.ConfigMap {
		cm := &corev1.ConfigMap{}
		cm.Name, cm.Labels = "home-sessions", labels
		if owner != "" {
			cm.OwnerReferences = []metav1.OwnerReference{{APIVersion: camv1.GroupVersion.String(), Kind: "TokenPolicy", Name: "home", UID: owner}}
		}
		return cm
	}
	const foreign = "ConfigMap home-sessions is not this TokenPolicy's refresh-session store (no owner reference to the policy, " +
		"or not labelled as camfleet's), so every login and refresh fails; delete or rename it"
	for _, tc := range []struct {
		name string
		cm   *corev1.ConfigMap
		want string // the message of a False condition; "" for none
	}{
		{"no store yet", nil, ""},
		{"the token service's store", store(publication.OwnedLabels("home"), "uid-home"), ""},
		{"someone's ConfigMap", store(nil, ""), foreign},
		{"camfleet's labels, no owner", store(publication.OwnedLabels("home"), ""), foreign},
		{"owned, labels missing", store(nil, "uid-home"), foreign},
		{"labelled for another policy", store(publication.OwnedLabels("barn"), "uid-home"), foreign},
		{"left by an earlier policy of the same name", store(publication.OwnedLabels("home"), "uid-old"), foreign},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := sessionStoreCondition(p, tc.cm)
			switch {
			case tc.want == "" && got != nil:
				t.Fatalf("condition %+v, want none", got)
			case tc.want == "":
			case got == nil || got.Type != camv1.ConditionSessionStoreAvailable || got.Status != metav1.ConditionFalse ||
				got.Reason != camv1.ReasonForeignConfigMap || got.Message != tc.want:
				t.Fatalf("condition %+v, want False/%s %q", got, camv1.ReasonForeignConfigMap, tc.want)
			}
		})
	}
}

func TestSetKeyStatus(t *testing.T) {
	p := keys.Params{Period: 10 * time.Hour, Retention: 4 * time.Hour}
	old := &keys.Key{ID: "a", Algorithm: camv1.AlgorithmEdDSA, State: camv1.KeyRetiring, Created: t0, Activates: t0, Retires: t0.Add(10 * time.Hour)}
	cur := &keys.Key{ID: "b", Algorithm: camv1.AlgorithmEdDSA, State: camv1.KeyActive, Created: t0.Add(9 * time.Hour), Activates: t0.Add(10 * time.Hour)}
	next := &keys.Key{ID: "c", Algorithm: camv1.AlgorithmEdDSA, State: camv1.KeyPending, Created: t0.Add(19 * time.Hour), Activates: t0.Add(20 * time.Hour)}
	many := make([]string, 20)
	for i := range many {
		many[i] = fmt.Sprintf("pi-%02d", i)
	}
	holding := map[string]keys.Agents{"a": {Total: 3}, "b": {Total: 3, Lagging: []string{"pi-1"}}, "c": {Total: 21, Lagging: many}}
	var st camv1.TokenPolicyStatus
	setKeyStatus(&st, &keys.Set{Keys: []*keys.Key{old, cur, next}}, p, func(kid string) keys.Agents { return holding[kid] })
	if st.ActiveKeyID != "b" || !st.LastRotationTime.Time.Equal(t0.Add(10*time.Hour)) || !st.NextRotationTime.Time.Equal(t0.Add(20*time.Hour)) ||
		st.Agents != "2/3" || st.AgentsLoaded != 2 || st.AgentsTotal != 3 || len(st.Keys) != 3 || !st.Keys[0].RemoveAfter.Time.Equal(t0.Add(14*time.Hour)) || st.Keys[1].RemoveAfter != nil {
		t.Fatalf("status %+v", st)
	}
	if k := st.Keys[0]; k.Agents != "" || k.LaggingNodes != nil {
		t.Errorf("a retiring key counts agents: %+v", k)
	}
	if k := st.Keys[1]; k.Agents != "2/3" || !slices.Equal(k.LaggingNodes, []string{"pi-1"}) {
		t.Errorf("active key %+v", k)
	}
	if k := st.Keys[2]; k.Agents != "1/21" || len(k.LaggingNodes) != maxLaggingNamed || k.LaggingNodes[0] != "pi-00" {
		t.Errorf("pending key %+v", k)
	}
}

// TestGeneratedRBACIsMinimal: the role the markers generate grants what the controller uses
// and nothing more: no deletes, no wildcards, Secrets and ConfigMaps without delete, Nodes
// read-only (a Camera's node must exist), and no access to Pods or RBAC.
func TestGeneratedRBACIsMinimal(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(env.RepoRoot, "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal(raw, &role); err != nil {
		t.Fatal(err)
	}
	allowed := map[string][]string{
		"/configmaps":                          {"create", "get", "list", "patch", "update", "watch"},
		"/secrets":                             {"create", "get", "list", "patch", "update", "watch"},
		"/events":                              {"create", "patch"},
		"/nodes":                               {"get", "list", "watch"},
		"events.k8s.io/events":                 {"create", "patch"},
		"camfleet.io/tokenpolicies":            {"get", "list", "patch", "update", "watch"},
		"camfleet.io/cameras":                  {"get", "list", "patch", "update", "watch"},
		"camfleet.io/accesstokens":             {"get", "list", "patch", "update", "watch"},
		"camfleet.io/tokenpolicies/status":     {"get", "patch", "update"},
		"camfleet.io/cameras/status":           {"get", "patch", "update"},
		"camfleet.io/accesstokens/status":      {"get", "patch", "update"},
		"camfleet.io/tokenpolicies/finalizers": {"update"},
		"camfleet.io/accesstokens/finalizers":  {"update"},
	}
	seen := map[string]bool{}
	for _, rule := range role.Rules {
		for _, g := range rule.APIGroups {
			for _, r := range rule.Resources {
				key := g + "/" + r
				want, ok := allowed[key]
				if !ok {
					t.Errorf("the role grants %v on %s, which the controller does not use", rule.Verbs, key)
					continue
				}
				for _, v := range rule.Verbs {
					if !slices.Contains(want, v) {
						t.Errorf("the role grants %q on %s", v, key)
					}
				}
				seen[key] = true
			}
		}
		if len(rule.ResourceNames) > 0 || slices.Contains(rule.Verbs, "*") || strings.Contains(strings.Join(rule.Resources, ","), "*") {
			t.Errorf("wildcard rule %+v", rule)
		}
	}
	for _, need := range []string{"/secrets", "/configmaps", "/nodes", "camfleet.io/tokenpolicies/status", "camfleet.io/cameras/status"} {
		if !seen[need] {
			t.Errorf("the role lacks %s, which the controller needs", need)
		}
	}
}

func TestExternalIssuersCondition(t *testing.T) {
	ok := camv1.ExternalIssuerStatus{Issuer: "https://ha.example", JWKS: `{"keys":[]}`}
	clash := camv1.ExternalIssuerStatus{Issuer: "https://copycat.example", Message: "key k1 reuses the kid of one of this policy's own keys; the issuer is left out"}
	missing := camv1.ExternalIssuerStatus{Issuer: "https://gone.example", Message: `ConfigMap "ha-jwks" holds no JWKS`}
	for _, tc := range []struct {
		name     string
		external []camv1.ExternalIssuerStatus
		want     string // the message of a False condition; "" for none
	}{
		{"no external issuers", []camv1.ExternalIssuerStatus{}, ""},
		{"every issuer trusted", []camv1.ExternalIssuerStatus{ok}, ""},
		{"one left out", []camv1.ExternalIssuerStatus{ok, clash},
			"1 of 2 external issuers left out, their tokens refused: https://copycat.example: key k1 reuses the kid of one of this policy's own keys; the issuer is left out"},
		{"two left out", []camv1.ExternalIssuerStatus{clash, ok, missing},
			"2 of 3 external issuers left out, their tokens refused: https://copycat.example: key k1 reuses the kid of one of this policy's own keys; the issuer is left out; https://gone.example: ConfigMap \"ha-jwks\" holds no JWKS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := externalIssuersCondition(tc.external)
			switch {
			case tc.want == "" && got != nil:
				t.Fatalf("condition %+v, want none", got)
			case tc.want == "":
			case got == nil:
				t.Fatalf("no condition, want %q", tc.want)
			case got.Type != camv1.ConditionExternalIssuersTrusted || got.Status != metav1.ConditionFalse || got.Reason != camv1.ReasonExternalIssuerLeftOut || got.Message != tc.want:
				t.Errorf("condition %+v, want False %s %q", got, camv1.ReasonExternalIssuerLeftOut, tc.want)
			}
		})
	}
}
