package issuer_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/camfleet/camfleet/internal/issuer"
)

func (s *service) refresh(tok string) reply {
	s.t.Helper()
	return s.do(http.MethodPost, s.path("refresh"), `{"refresh_token":"`+tok+`"}`)
}

// sessionsConfigMap is the policy's session store as the API server holds it.
func (s *service) sessionsConfigMap() *corev1.ConfigMap {
	s.t.Helper()
	cm := &corev1.ConfigMap{}
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: s.ns, Name: "home-sessions"}, cm); err != nil {
		s.t.Fatal(err)
	}
	return cm
}

// jti is the ID claim of a token, read without verifying it.
func jti(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", tok)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		ID string `json:"jti"`
	}
	if err := json.Unmarshal(payload, &c); err != nil || c.ID == "" {
		t.Fatalf("no jti in %s: %v", payload, err)
	}
	return c.ID
}

// TestRefreshTokenRedeemsOnce: two refreshes with the same token that both read the session
// before either writes get one new pair between them, and the family is revoked as a reuse.
// The write hook holds each request at its write until both have read, so the interleaving
// that let both succeed happens every run. Security review finding: both got new pairs.
func TestRefreshTokenRedeemsOnce(t *testing.T) {
	s := newService(t, bcrypt.MinCost, false)
	rt := str(s.login("alice", alicePass).body["refresh_token"])
	s.clock.Step(time.Minute)

	var mu sync.Mutex
	arrived := 0
	both := make(chan struct{})
	issuer.BeforeSessionWrite(s.srv, func() {
		mu.Lock()
		arrived++
		n := arrived
		if n == 2 {
			close(both)
		}
		mu.Unlock()
		if n <= 2 {
			// Bounded, so a store that serialises requests some other way cannot hang the test.
			select {
			case <-both:
			case <-time.After(5 * time.Second):
			}
		}
	})
	replies := make(chan reply, 2)
	for range 2 {
		go func() { replies <- s.refresh(rt) }()
	}
	var ok []reply
	for range 2 {
		r := <-replies
		switch r.status {
		case http.StatusOK:
			ok = append(ok, r)
		case http.StatusUnauthorized:
		default:
			t.Fatalf("a concurrent refresh answered %d %s", r.status, r.raw)
		}
	}
	issuer.BeforeSessionWrite(s.srv, nil)
	select {
	case <-both:
	default:
		t.Fatal("the two refreshes never both reached the session write; the test proves nothing")
	}
	if len(ok) != 1 {
		t.Fatalf("%d of 2 concurrent refreshes with one token succeeded, want exactly 1", len(ok))
	}
	if r := s.refresh(str(ok[0].body["refresh_token"])); r.status != http.StatusUnauthorized {
		t.Fatalf("the family must be revoked after the reuse; the winner's token refreshed: %d", r.status)
	}
	if !strings.Contains(s.logs.String(), "Refresh token reused") {
		t.Errorf("the reuse was not logged")
	}

	// Without the hook, many concurrent refreshes of one fresh token: at most one succeeds.
	rt = str(s.login("bob", bobPass).body["refresh_token"])
	const n = 8
	statuses := make(chan int, n)
	for range n {
		go func() { statuses <- s.refresh(rt).status }()
	}
	counts := map[int]int{}
	for range n {
		counts[<-statuses]++
	}
	if counts[http.StatusOK] > 1 || counts[http.StatusOK]+counts[http.StatusUnauthorized] != n {
		t.Fatalf("%d concurrent refreshes with one token: %v; want at most one 200, the rest 401", n, counts)
	}
}

// TestSessionStoreHoldsNoTokenIDs: the session ConfigMap holds hashes only, neither a refresh
// token's ID nor its family or nonce; refresh still works and rotates. Security review
// finding: the current jti was stored as is.
func TestSessionStoreHoldsNoTokenIDs(t *testing.T) {
	s := newService(t, bcrypt.MinCost, false)
	first := s.login("alice", alicePass)
	s.clock.Step(time.Minute)
	second := s.refresh(str(first.body["refresh_token"]))
	if second.status != http.StatusOK {
		t.Fatalf("refresh: %d %s", second.status, second.raw)
	}
	cm := s.sessionsConfigMap()
	stored := ""
	for k, v := range cm.Data {
		stored += k + "=" + v + "\n"
	}
	for _, tok := range []string{str(first.body["refresh_token"]), str(second.body["refresh_token"])} {
		id := jti(t, tok)
		family, nonce, _ := strings.Cut(id, ".")
		for what, v := range map[string]string{"jti": id, "family": family, "nonce": nonce} {
			if v == "" || strings.Contains(stored, v) {
				t.Fatalf("the session store holds a refresh token's %s %q:\n%s", what, v, stored)
			}
		}
	}
	if r := s.refresh(str(second.body["refresh_token"])); r.status != http.StatusOK {
		t.Fatalf("refresh with the rotated token: %d %s", r.status, r.raw)
	}
	if r := s.refresh(str(first.body["refresh_token"])); r.status != http.StatusUnauthorized {
		t.Fatalf("reuse of the first token: %d", r.status)
	}
}

// TestSessionFamiliesPerUserAreCapped: 201 logins of one user leave at most 10 families in the
// store; the newest login still refreshes and the oldest family was pushed out. Security
// review finding: the store grew with every login until the ConfigMap could not be written.
func TestSessionFamiliesPerUserAreCapped(t *testing.T) {
	s := newService(t, bcrypt.MinCost, false)
	var first, last string
	for i := range 201 {
		r := s.login("alice", alicePass)
		if r.status != http.StatusOK {
			t.Fatalf("login %d: %d %s", i, r.status, r.raw)
		}
		if i == 0 {
			first = str(r.body["refresh_token"])
		}
		last = str(r.body["refresh_token"])
		s.clock.Step(time.Second) // distinct expiry times, as real logins have
	}
	var families map[string]json.RawMessage
	cm := s.sessionsConfigMap()
	if len(cm.Data) != 1 {
		t.Fatalf("the store has %d data keys, want 1", len(cm.Data))
	}
	for _, raw := range cm.Data {
		if err := json.Unmarshal([]byte(raw), &families); err != nil {
			t.Fatal(err)
		}
	}
	if len(families) > 10 || len(families) == 0 {
		t.Fatalf("after 201 logins of one user the store holds %d families, want 1 to 10", len(families))
	}
	if r := s.refresh(last); r.status != http.StatusOK {
		t.Fatalf("the newest login's refresh: %d %s", r.status, r.raw)
	}
	if r := s.refresh(first); r.status != http.StatusUnauthorized {
		t.Fatalf("the oldest login's refresh, pushed out: %d", r.status)
	}
}

// TestForeignSessionsConfigMapIsLeftAlone: a ConfigMap by the store's name that the policy does
// not own (no owner reference to it, or without camfleet's labels) is never written: login and
// refresh answer a generic 500 and log why. Security review finding: it was overwritten.
func TestForeignSessionsConfigMapIsLeftAlone(t *testing.T) {
	s := newService(t, bcrypt.MinCost, false)
	ctx := context.Background()
	// A working session first, so refresh is tested against a foreign store too.
	rt := str(s.login("alice", alicePass).body["refresh_token"])
	var policyUID types.UID
	{
		cm := s.sessionsConfigMap()
		policyUID = cm.OwnerReferences[0].UID
		if err := env.Client.Delete(ctx, cm); err != nil {
			t.Fatal(err)
		}
	}
	ownedBy := func(uid types.UID) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: "camfleet.io/v1alpha1", Kind: "TokenPolicy", Name: "home", UID: uid}}
	}
	ours := map[string]string{"app.kubernetes.io/managed-by": "camfleet", "camfleet.io/policy": "home"}
	cases := []struct {
		name   string
		labels map[string]string
		owners []metav1.OwnerReference
	}{
		{"someone else's", map[string]string{"app": "other"}, nil},
		{"camfleet's labels, no owner", ours, nil},
		{"camfleet's labels, another owner", ours, ownedBy("00000000-0000-0000-0000-000000000001")},
		{"the policy's owner reference, no labels", nil, ownedBy(policyUID)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			foreign := &corev1.ConfigMap{Data: map[string]string{"sessions.json": `{"precious":"data"}`}}
			foreign.Name, foreign.Namespace = "home-sessions", s.ns
			foreign.Labels, foreign.OwnerReferences = tc.labels, tc.owners
			if err := env.Client.Create(ctx, foreign); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = env.Client.Delete(ctx, foreign) }()
			for _, r := range []reply{s.login("alice", alicePass), s.refresh(rt)} {
				if r.status != http.StatusInternalServerError || r.raw != `{"error":"the token service could not complete the request"}`+"\n" {
					t.Errorf("with a foreign store: %d %s, want a generic 500", r.status, r.raw)
				}
			}
			after := s.sessionsConfigMap()
			if after.ResourceVersion != foreign.ResourceVersion || after.Data["sessions.json"] != `{"precious":"data"}` || len(after.Data) != 1 {
				t.Fatalf("the foreign ConfigMap was written: %v", after.Data)
			}
			if !strings.Contains(s.logs.String(), "is not the refresh-session store of its TokenPolicy") {
				t.Fatalf("the refusal is not logged:\n%s", s.logs.String())
			}
		})
	}
	// With the foreign ConfigMap gone, logins work again.
	if r := s.login("alice", alicePass); r.status != http.StatusOK {
		t.Fatalf("login after the foreign store left: %d %s", r.status, r.raw)
	}
}
