package controllers

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/keys"
	"github.com/camfleet/camfleet/internal/publication"
	"github.com/camfleet/camfleet/internal/token"
)

// sign makes a token with the key, as the token service will: kid in the header.
func sign(t *testing.T, k *keys.Key, exp time.Time) string {
	t.Helper()
	alg, _ := jwa.LookupSignatureAlgorithm(string(k.Algorithm))
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.KeyIDKey, k.ID); err != nil {
		t.Fatal(err)
	}
	payload := fmt.Sprintf(`{"exp":%d}`, exp.Unix())
	tok, err := jws.Sign([]byte(payload), jws.WithKey(alg, k.Signer(), jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatalf("sign with %s: %v", k.ID, err)
	}
	return string(tok)
}

// verifies says whether the published JWKS verifies the token, by its kid.
func verifies(s state, tok string) bool {
	_, err := jws.Verify([]byte(tok), jws.WithKeySet(s.jwks, jws.WithRequireKid(true)))
	return err == nil
}

// TestPublishedKeysArePublicWithThumbprintKids: the Secret and ConfigMap are owned, labelled
// and typed; every published key has kty, kid (its RFC 7638 thumbprint), alg and use, and no
// private member.
// Checks DESIGN.md key-lifecycle invariant 4.
func TestPublishedKeysArePublicWithThumbprintKids(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	private := []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth"}
	for _, alg := range []camv1.SigningAlgorithm{camv1.AlgorithmEdDSA, camv1.AlgorithmES256, camv1.AlgorithmRS256} {
		name := strings.ToLower(string(alg))
		p := h.policy(name, alg)
		h.settle(name)
		st := h.checkInvariants(name)
		if st.secret.Type != keys.SecretType || !metav1.IsControlledBy(st.secret, p) || st.secret.Labels[publication.LabelManagedBy] != publication.ManagedBy {
			t.Errorf("%s: Secret type %q, owners %v, labels %v", alg, st.secret.Type, st.secret.OwnerReferences, st.secret.Labels)
		}
		var cm corev1.ConfigMap
		if err := env.Client.Get(ctx, h.key(name+"-jwks"), &cm); err != nil || !metav1.IsControlledBy(&cm, p) || cm.Labels[publication.LabelPolicy] != name {
			t.Errorf("%s: ConfigMap %v owners %v labels %v", alg, err, cm.OwnerReferences, cm.Labels)
		}
		var doc struct{ Keys []map[string]any }
		if err := json.Unmarshal([]byte(st.raw), &doc); err != nil || len(doc.Keys) != 1 {
			t.Fatalf("%s: JWKS %s: %v", alg, st.raw, err)
		}
		k := doc.Keys[0]
		for _, m := range private {
			if _, ok := k[m]; ok {
				t.Errorf("%s: the JWKS holds private member %q", alg, m)
			}
		}
		if k["alg"] != string(alg) || k["use"] != "sig" || k["kty"] == nil {
			t.Errorf("%s: published key %v lacks alg/use/kty", alg, k)
		}
		// The kid is recomputed from the published key alone, independently of the controller.
		pub, _ := st.jwks.Key(0)
		sum, _ := pub.Thumbprint(crypto.SHA256)
		if want := base64.RawURLEncoding.EncodeToString(sum); k["kid"] != want {
			t.Errorf("%s: kid %v is not the RFC 7638 thumbprint %s", alg, k["kid"], want)
		}
		if alg == camv1.AlgorithmRS256 {
			if bits := st.set.Active().Public().(*rsa.PublicKey).N.BitLen(); bits != keys.DefaultRSABits {
				t.Errorf("RS256 key of %d bits, want %d", bits, keys.DefaultRSABits)
			}
		}
		c := meta.FindStatusCondition(st.policy.Status.Conditions, camv1.ConditionReady)
		kp := meta.FindStatusCondition(st.policy.Status.Conditions, camv1.ConditionKeysPublished)
		if c == nil || c.Status != metav1.ConditionTrue || kp == nil || kp.Status != metav1.ConditionTrue || st.policy.Status.ObservedGeneration != p.Generation {
			t.Errorf("%s: status %s", alg, mustJSON(t, st.policy.Status))
		}
		if st.policy.Status.Issuer != "https://camfleet.example/policies/"+h.ns+"/"+name || st.policy.Status.SecretName != name+"-signing-keys" {
			t.Errorf("%s: issuer %q secret %q", alg, st.policy.Status.Issuer, st.policy.Status.SecretName)
		}
	}
}

// TestKeySignsOnlyOncePublishedAheadAndLoadedByAgents: a key signs only after it has been
// published for publishAhead and every reporting agent holds it, or maxActivationWait has
// passed, with a condition naming the agents that lag.
// Checks DESIGN.md key-lifecycle invariant 1.
func TestKeySignsOnlyOncePublishedAheadAndLoadedByAgents(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.policy("tp", camv1.AlgorithmEdDSA)
	h.settle("tp")
	first := h.state("tp").set.Active().ID
	cam := &camv1.Camera{Spec: camv1.CameraSpec{NodeName: "pi-1", TokenPolicyRef: &camv1.PolicyReference{Name: "tp"},
		Source: camv1.CameraSource{Type: camv1.SourceTestPattern, TestPattern: &camv1.TestPatternSource{}}}}
	cam.Name, cam.Namespace = "porch", h.ns
	if err := env.Client.Create(ctx, cam); err != nil {
		t.Fatal(err)
	}
	cam.Status.LoadedKeyIDs = []string{first}
	if err := env.Client.Status().Update(ctx, cam); err != nil {
		t.Fatal(err)
	}

	// 9h: the successor is published one hour before the period ends.
	h.clock.SetTime(t0.Add(9 * time.Hour))
	res := h.settle("tp")
	st := h.checkInvariants("tp")
	pending := st.set.Pending()
	if pending == nil || !st.published(pending.ID) || st.set.Active().ID != first {
		t.Fatalf("at 9h want a published pending key beside the active one: %s", mustJSON(t, st.policy.Status.Keys))
	}
	if res.RequeueAfter != time.Hour {
		t.Errorf("requeue after %s, want the activation deadline 1h away", res.RequeueAfter)
	}
	// Just before publishAhead has passed it must not sign.
	h.clock.SetTime(t0.Add(10*time.Hour - time.Second))
	h.settle("tp")
	if h.state("tp").set.Active().ID != first {
		t.Fatal("a key signed before it had been published for publishAhead")
	}
	// Due, but the agent on pi-1 has not loaded it: it waits, and says for whom.
	h.clock.SetTime(t0.Add(10 * time.Hour))
	res = h.settle("tp")
	st = h.state("tp")
	sync := meta.FindStatusCondition(st.policy.Status.Conditions, camv1.ConditionAgentsInSync)
	if st.set.Active().ID != first || sync == nil || sync.Status != metav1.ConditionFalse || !strings.Contains(sync.Message, "pi-1") {
		t.Fatalf("want the key held back for pi-1; active %s, AgentsInSync %+v", st.set.Active().ID, sync)
	}
	if st.policy.Status.Agents != "1/1" {
		t.Errorf("status.agents %q, want 1/1 (the agent holds the active key)", st.policy.Status.Agents)
	}
	if want := pending.Published.Add(2 * time.Hour).Sub(h.clock.Now()); res.RequeueAfter != want {
		t.Errorf("requeue after %s, want %s (maxActivationWait)", res.RequeueAfter, want)
	}
	// The agent loads it: the key signs.
	cam.Status.LoadedKeyIDs = []string{first, pending.ID}
	if err := env.Client.Status().Update(ctx, cam); err != nil {
		t.Fatal(err)
	}
	h.settle("tp")
	st = h.checkInvariants("tp")
	if st.set.Active().ID != pending.ID || meta.FindStatusCondition(st.policy.Status.Conditions, camv1.ConditionAgentsInSync) != nil {
		t.Fatalf("once the agent holds the key it must sign: %s", mustJSON(t, st.policy.Status))
	}

	// Next rotation: the agent never loads the key; after maxActivationWait it signs anyway,
	// and the condition names the lagging agent.
	h.clock.SetTime(t0.Add(19 * time.Hour))
	h.settle("tp")
	next := h.state("tp").set.Pending()
	h.clock.SetTime(next.Published.Add(2 * time.Hour))
	h.settle("tp")
	st = h.checkInvariants("tp")
	sync = meta.FindStatusCondition(st.policy.Status.Conditions, camv1.ConditionAgentsInSync)
	if st.set.Active().ID != next.ID || sync == nil || sync.Reason != keys.ReasonAgentsLagging || !strings.Contains(sync.Message, "pi-1") {
		t.Fatalf("after maxActivationWait the key signs and the lag is named: active %s, %+v", st.set.Active().ID, sync)
	}
}

// TestEveryTokenVerifiesUntilExpiryOverTenRotations walks ten rotation periods in irregular
// steps. After every step: which keys are published, exactly one signs, and every token signed
// at any earlier moment verifies until it expires. A kid is never reused.
// Checks DESIGN.md key-lifecycle invariants 2, 3 and 4 over a long run.
func TestEveryTokenVerifiesUntilExpiryOverTenRotations(t *testing.T) {
	h := newHarness(t)
	h.policy("walk", camv1.AlgorithmEdDSA)
	type token struct {
		jwt string
		exp time.Time
		kid string
	}
	var tokens []token
	seen := map[string]bool{} // every kid ever published
	gone := map[string]bool{} // kids that left the JWKS
	activeAt := map[string]time.Time{}
	maxTTL, leeway, period := 4*time.Hour, time.Minute, 10*time.Hour
	end := t0.Add(10 * period)
	for steps := 0; h.clock.Now().Before(end); steps++ {
		res := h.settle("walk")
		st := h.checkInvariants("walk")
		now := h.clock.Now()
		for _, kid := range st.publishedKIDs() {
			if gone[kid] {
				t.Fatalf("kid %s was reused after leaving the JWKS", kid)
			}
			seen[kid] = true
		}
		for kid := range seen {
			if !st.published(kid) {
				gone[kid] = true
			}
		}
		a := st.set.Active()
		if _, ok := activeAt[a.ID]; !ok {
			activeAt[a.ID] = now
			if len(activeAt) > 1 && a.Published.Add(time.Hour).After(a.Activates) {
				t.Errorf("key %s activated at %s, only %s after it was published", a.ID, a.Activates, a.Activates.Sub(a.Published))
			}
		}
		for _, tk := range tokens {
			if now.Before(tk.exp.Add(leeway)) && !verifies(st, tk.jwt) {
				t.Fatalf("at %s a token signed by %s, expiring %s, no longer verifies", now, tk.kid, tk.exp)
			}
		}
		tokens = append(tokens, token{sign(t, a, now.Add(maxTTL)), now.Add(maxTTL), a.ID})
		step := 37 * time.Minute
		if res.RequeueAfter > 0 && res.RequeueAfter < step {
			step = res.RequeueAfter
		}
		h.clock.Step(step)
		if steps > 1000 {
			t.Fatal("the walk does not advance")
		}
	}
	if len(activeAt) < 10 || len(activeAt) > 11 {
		t.Errorf("%d keys signed over ten periods, want 10 or 11", len(activeAt))
	}
	if n := len(h.state("walk").set.Keys); n > 2 {
		t.Errorf("%d keys kept at the end; retired keys must be removed once their tokens expire", n)
	}
}

// TestRetiredKeyStaysPublishedForMaxTTLPlusLeeway: a retired key stays published for maxTTL +
// leeway after it stops signing, and leaves the JWKS then.
// Checks DESIGN.md key-lifecycle invariant 2.
func TestRetiredKeyStaysPublishedForMaxTTLPlusLeeway(t *testing.T) {
	h := newHarness(t)
	h.policy("ret", camv1.AlgorithmES256)
	h.settle("ret")
	old := h.state("ret").set.Active()
	h.clock.SetTime(t0.Add(9 * time.Hour))
	h.settle("ret")
	h.clock.SetTime(t0.Add(10 * time.Hour))
	h.settle("ret")
	st := h.state("ret")
	retired := st.set.Get(old.ID)
	if retired == nil || retired.State != camv1.KeyRetiring || !st.published(old.ID) {
		t.Fatalf("the old key must be retiring and published: %s", mustJSON(t, st.policy.Status.Keys))
	}
	removeAt := retired.Retires.Add(4*time.Hour + time.Minute)
	var ks camv1.KeyStatus
	for _, k := range st.policy.Status.Keys {
		if k.KeyID == old.ID {
			ks = k
		}
	}
	if ks.RemoveAfter == nil || !ks.RemoveAfter.Time.Equal(removeAt) {
		t.Errorf("status removeAfter %v, want %s", ks.RemoveAfter, removeAt)
	}
	h.clock.SetTime(removeAt.Add(-time.Second))
	h.settle("ret")
	if !h.state("ret").published(old.ID) {
		t.Fatal("the retired key left the JWKS before its last token expired")
	}
	h.clock.SetTime(removeAt)
	h.settle("ret")
	if h.state("ret").published(old.ID) {
		t.Fatal("the retired key is still published after retention")
	}
	if !slices.ContainsFunc(h.drainEvents(), func(e string) bool { return strings.Contains(e, "KeyRemoved") && strings.Contains(e, old.ID) }) {
		t.Error("no KeyRemoved Event")
	}
}

// TestSettledPolicyWritesNothing: ten extra reconciles of a settled policy change no
// resourceVersion.
// Checks DESIGN.md key-lifecycle invariant 5.
func TestSettledPolicyWritesNothing(t *testing.T) {
	h := newHarness(t)
	h.policy("quiet", camv1.AlgorithmRS256)
	h.settle("quiet")
	h.clock.SetTime(t0.Add(9*time.Hour + 5*time.Minute)) // with a pending key, the busiest state
	h.settle("quiet")
	before := h.versions("quiet")
	for range 10 {
		if _, err := h.reconcileWith(h.r, "quiet"); err != nil {
			t.Fatal(err)
		}
	}
	if after := h.versions("quiet"); after != before {
		t.Fatalf("extra reconciles wrote: %s -> %s", before, after)
	}
}

// TestEmergencyRotationSignsAtOnceAndRevokes: a new annotation value makes a new key sign at
// once, exactly once; with revoke, the previous keys leave the JWKS at once and their tokens
// stop verifying.
// Checks DESIGN.md key-lifecycle invariant 6.
func TestEmergencyRotationSignsAtOnceAndRevokes(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	p := h.policy("sos", camv1.AlgorithmEdDSA)
	h.settle("sos")
	st := h.state("sos")
	first := st.set.Active()
	oldToken := sign(t, first, t0.Add(time.Hour))

	annotate := func(kv ...string) {
		t.Helper()
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(p), p); err != nil {
			t.Fatal(err)
		}
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		for i := 0; i < len(kv); i += 2 {
			p.Annotations[kv[i]] = kv[i+1]
		}
		if err := env.Client.Update(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	// Without revoke the new key is published at once; with no agent reporting, it signs
	// after publishAhead, and the old key stays published.
	h.clock.Step(time.Minute)
	annotate(camv1.AnnotationRotate, "incident-1")
	h.settle("sos")
	st = h.checkInvariants("sos")
	pk := st.set.Pending()
	if pk == nil || !pk.Requested || st.set.Active().ID != first.ID || !st.published(pk.ID) || st.policy.Status.LastRotateRequest != "incident-1" {
		t.Fatalf("rotate without revoke: want the new key published and pending: %s", mustJSON(t, st.policy.Status))
	}
	h.clock.Step(time.Hour)
	h.settle("sos")
	st = h.checkInvariants("sos")
	second := st.set.Active()
	if second.ID != pk.ID || !st.published(first.ID) || !verifies(st, oldToken) {
		t.Fatalf("rotate without revoke: after publishAhead the new key signs, the old one still published: %s", mustJSON(t, st.policy.Status))
	}
	// The same value again, and more reconciles: no second rotation.
	h.clock.Step(time.Minute)
	h.settle("sos")
	annotate(camv1.AnnotationRotate, "incident-1")
	h.settle("sos")
	if got := h.state("sos").set.Active().ID; got != second.ID {
		t.Fatal("one annotation value rotated twice")
	}
	// Revoke: only the new key remains.
	h.clock.Step(time.Minute)
	annotate(camv1.AnnotationRotate, "incident-2", camv1.AnnotationRotateRevoke, "true")
	h.settle("sos")
	st = h.checkInvariants("sos")
	if kids := st.publishedKIDs(); len(kids) != 1 || kids[0] == first.ID || kids[0] == second.ID {
		t.Fatalf("after a revoking rotation the JWKS holds %v", kids)
	}
	if verifies(st, oldToken) || verifies(st, sign(t, second, t0.Add(time.Hour))) {
		t.Fatal("a token signed by a revoked key still verifies")
	}
	evs := strings.Join(h.drainEvents(), "\n")
	if strings.Count(evs, keys.ReasonEmergencyRotation) != 1 || strings.Count(evs, keys.ReasonRotationRequested) != 1 {
		t.Errorf("want one RotationRequested and one EmergencyRotation Event:\n%s", evs)
	}
}

// TestAlgorithmChange: a new algorithm in the spec rotates to a key of it through the normal
// lifecycle: published first, signing after publishAhead, the old key retiring.
func TestAlgorithmChange(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	p := h.policy("alg", camv1.AlgorithmEdDSA)
	h.settle("alg")
	old := h.state("alg").set.Active()
	h.clock.SetTime(t0.Add(2 * time.Hour))
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(p), p); err != nil {
		t.Fatal(err)
	}
	p.Spec.Algorithm = camv1.AlgorithmES256
	if err := env.Client.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	h.settle("alg")
	st := h.checkInvariants("alg")
	pk := st.set.Pending()
	if pk == nil || pk.Algorithm != camv1.AlgorithmES256 || st.set.Active().ID != old.ID {
		t.Fatalf("want a pending ES256 key and the EdDSA key still signing: %s", mustJSON(t, st.policy.Status.Keys))
	}
	h.clock.SetTime(t0.Add(3 * time.Hour))
	h.settle("alg")
	st = h.checkInvariants("alg")
	if a := st.set.Active(); a.ID != pk.ID || st.set.Get(old.ID).State != camv1.KeyRetiring {
		t.Fatalf("after publishAhead the ES256 key signs: %s", mustJSON(t, st.policy.Status.Keys))
	}
	if n := testutil.ToFloat64(h.r.Metrics.rotations.WithLabelValues(h.ns, "alg", keys.ReasonAlgorithmChanged)); n != 1 {
		t.Errorf("rotations_total{reason=AlgorithmChanged} = %v, want 1", n)
	}
}

// TestBadSecrets: a Secret deleted, edited by hand, with a corrupt PEM, a weak RSA key or a
// key of the wrong algorithm gives a condition and an Event naming the problem (never the key
// material), and the controller recovers: a sound key signs again, nothing bad is published.
func TestBadSecrets(t *testing.T) {
	weak, err := rsa.GenerateKey(randReader{}, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weakKID, _ := keys.Thumbprint(weak.Public())
	cases := []struct {
		name   string
		damage func(t *testing.T, s *corev1.Secret, active *keys.Key) bool // false: delete the Secret
		reason string
		words  string
	}{
		{"deleted", func(*testing.T, *corev1.Secret, *keys.Key) bool { return false }, "SigningKeysLost", "was deleted"},
		{"corrupt pem", func(_ *testing.T, s *corev1.Secret, a *keys.Key) bool {
			s.Data[a.ID+".pem"] = []byte("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
			return true
		}, "KeyInvalid", "not a PKCS#8 PEM block"},
		{"weak rsa", func(t *testing.T, s *corev1.Secret, a *keys.Key) bool {
			s.Data[weakKID+".pem"] = pemOf(t, weak)
			s.Data["keys.json"] = []byte(strings.Replace(string(s.Data["keys.json"]), `"keys":[`, `"keys":[{"kid":"`+weakKID+`","alg":"RS256","state":"Active","created":"2026-01-01T00:00:00Z","activates":"2030-01-01T00:00:00Z"},`, 1))
			return true
		}, "KeyInvalid", "RSA key of 1024 bits, under the minimum of 2048"},
		{"algorithm mismatch", func(_ *testing.T, s *corev1.Secret, a *keys.Key) bool {
			s.Data["keys.json"] = []byte(strings.Replace(string(s.Data["keys.json"]), `"alg":"EdDSA"`, `"alg":"ES256"`, 1))
			return true
		}, "KeyInvalid", "recorded as ES256 but the key is for EdDSA"},
		{"kid edited", func(_ *testing.T, s *corev1.Secret, a *keys.Key) bool {
			s.Data["keys.json"] = []byte(strings.Replace(string(s.Data["keys.json"]), a.ID, "my-own-kid", 1))
			s.Data["my-own-kid.pem"] = s.Data[a.ID+".pem"]
			delete(s.Data, a.ID+".pem")
			return true
		}, "KeyInvalid", "kid is not the thumbprint"},
		{"record corrupt", func(_ *testing.T, s *corev1.Secret, a *keys.Key) bool {
			s.Data["keys.json"] = []byte("{not json")
			return true
		}, "KeyMetadataCorrupt", "not a valid key record"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			ctx := context.Background()
			h.policy("bad", camv1.AlgorithmEdDSA)
			h.settle("bad")
			st := h.state("bad")
			active := st.set.Active()
			pemText := string(st.secret.Data[active.ID+".pem"])
			if tc.damage(t, st.secret, active) {
				if err := env.Client.Update(ctx, st.secret); err != nil {
					t.Fatal(err)
				}
			} else if err := env.Client.Delete(ctx, st.secret); err != nil {
				t.Fatal(err)
			}
			h.drainEvents()
			h.clock.Step(time.Minute)
			if _, err := h.reconcileWith(h.r, "bad"); err != nil {
				t.Fatalf("a damaged Secret must not fail the reconcile: %v", err)
			}
			p := h.state("bad").policy
			ready := meta.FindStatusCondition(p.Status.Conditions, camv1.ConditionReady)
			evs := strings.Join(h.drainEvents(), "\n")
			if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != tc.reason || !strings.Contains(ready.Message, tc.words) {
				t.Errorf("Ready condition %+v, want reason %s saying %q", ready, tc.reason, tc.words)
			}
			if !strings.Contains(evs, tc.reason) || !strings.Contains(evs, tc.words) {
				t.Errorf("no Warning Event naming the problem:\n%s", evs)
			}
			body := pemText[30:60]
			for _, text := range []string{ready.Message, evs, mustJSON(t, p.Status)} {
				if strings.Contains(text, "PRIVATE KEY") || strings.Contains(text, body) {
					t.Fatalf("key material reached a condition, Event or status:\n%s", text)
				}
			}
			h.settle("bad")
			st = h.checkInvariants("bad")
			if ready := meta.FindStatusCondition(st.policy.Status.Conditions, camv1.ConditionReady); ready.Status != metav1.ConditionTrue {
				t.Errorf("not recovered: %+v", ready)
			}
			if st.published(weakKID) || st.published("my-own-kid") {
				t.Error("an untrusted key was published")
			}
			if tc.name == "record corrupt" && (!st.published(active.ID) || st.set.Get(active.ID).State != camv1.KeyRetiring) {
				t.Error("a sound key whose record was lost must stay published as retiring")
			}
		})
	}
}

// TestDeadlinesFollowTheInjectedClock: all time comes from the injected clock; the reconciler
// asks to run again exactly at the next deadline it computes from it.
// Checks DESIGN.md key-lifecycle invariant 7.
func TestDeadlinesFollowTheInjectedClock(t *testing.T) {
	h := newHarness(t)
	h.policy("clock", camv1.AlgorithmEdDSA)
	if res := h.settle("clock"); res.RequeueAfter != 9*time.Hour {
		t.Fatalf("at t0 requeue after %s, want 9h (period - publishAhead)", res.RequeueAfter)
	}
	h.clock.Step(3*time.Hour + 30*time.Minute)
	if res := h.settle("clock"); res.RequeueAfter != 5*time.Hour+30*time.Minute {
		t.Fatalf("3h30m later requeue after %s, want 5h30m", res.RequeueAfter)
	}
	st := h.state("clock")
	if st.set.Active().Activates != t0 || !st.policy.Status.NextRotationTime.Time.Equal(t0.Add(10*time.Hour)) {
		t.Fatalf("times not from the fake clock: %s", mustJSON(t, st.policy.Status))
	}
}

// TestOneActiveKeyAfterEveryReconcile checks after every single reconcile (not only settled
// ones) through bootstrap, publication, activation and emergency rotation: one active key, a
// JWKS that is never empty once created, and the active key in it.
// Checks DESIGN.md key-lifecycle invariant 3.
func TestOneActiveKeyAfterEveryReconcile(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	p := h.policy("one", camv1.AlgorithmES256)
	check := func(when string) {
		t.Helper()
		for range 3 {
			if _, err := h.reconcileWith(h.r, "one"); err != nil {
				t.Fatal(err)
			}
			st := h.state("one")
			if a := st.set.Active(); a == nil || !st.published(a.ID) || st.jwks.Len() == 0 {
				t.Fatalf("%s: active key missing or unpublished: %s", when, mustJSON(t, st.policy.Status.Keys))
			}
			n := 0
			for _, k := range st.set.Keys {
				if k.State == camv1.KeyActive {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%s: %d active keys", when, n)
			}
		}
	}
	check("bootstrap")
	h.clock.SetTime(t0.Add(9 * time.Hour))
	check("successor published")
	h.clock.SetTime(t0.Add(10 * time.Hour))
	check("activation")
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(p), p); err != nil {
		t.Fatal(err)
	}
	p.Annotations = map[string]string{camv1.AnnotationRotate: "x", camv1.AnnotationRotateRevoke: "true"}
	if err := env.Client.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	check("emergency rotation with revoke")
}

// TestForeignObjectsStallThePolicy: a Secret or ConfigMap under a name the policy writes to,
// which the policy does not own, is never written; the policy is Stalled, and its conditions
// and Warning Event say what to do in a plain message (no Go error chain).
func TestForeignObjectsStallThePolicy(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	for _, tc := range []struct {
		policy  string
		foreign client.Object
		message string
	}{
		{"taken", &corev1.Secret{StringData: map[string]string{"mine": "keep me"}},
			"Secret taken-signing-keys exists and is not owned by this TokenPolicy; delete or rename it"},
		{"published", &corev1.ConfigMap{Data: map[string]string{"mine": "keep me"}},
			"ConfigMap published-jwks exists and is not owned by this TokenPolicy; delete or rename it"},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			name := publication.SecretName(tc.policy)
			if _, ok := tc.foreign.(*corev1.ConfigMap); ok {
				name = publication.ConfigMapName(tc.policy)
			}
			tc.foreign.SetName(name)
			tc.foreign.SetNamespace(h.ns)
			if err := env.Client.Create(ctx, tc.foreign); err != nil {
				t.Fatal(err)
			}
			before := tc.foreign.GetResourceVersion()
			h.policy(tc.policy, camv1.AlgorithmEdDSA)
			_, err := h.reconcileWith(h.r, tc.policy)
			if err == nil || !errors.Is(err, reconcile.TerminalError(nil)) {
				t.Fatalf("want a terminal error, got %v", err)
			}
			p := &camv1.TokenPolicy{}
			if err := env.Client.Get(ctx, h.key(tc.policy), p); err != nil {
				t.Fatal(err)
			}
			stalled := meta.FindStatusCondition(p.Status.Conditions, camv1.ConditionStalled)
			ready := meta.FindStatusCondition(p.Status.Conditions, camv1.ConditionReady)
			if stalled == nil || stalled.Status != metav1.ConditionTrue || stalled.Reason != camv1.ReasonInvalidSpec || stalled.Message != tc.message ||
				ready == nil || ready.Message != tc.message || p.Status.ObservedGeneration != 0 {
				t.Fatalf("status %s", mustJSON(t, p.Status))
			}
			if evs := strings.Join(h.drainEvents(), "\n"); !strings.Contains(evs, "Warning InvalidSpec "+tc.message) {
				t.Errorf("no InvalidSpec Event with the plain message:\n%s", evs)
			}
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(tc.foreign), tc.foreign); err != nil || tc.foreign.GetResourceVersion() != before {
				t.Fatalf("the foreign %T was written: %v", tc.foreign, err)
			}
		})
	}
}

// TestVerificationInStatus: status carries everything a verifier needs (the same JWKS as the
// ConfigMap, the revoked IDs, each external issuer's resolved keys with its audience, subject
// claim and roles) and nothing private anywhere.
func TestVerificationInStatus(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	pubKey, _, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(pubKey)
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	p := h.policy("verify", camv1.AlgorithmES256, func(p *camv1.TokenPolicy) {
		p.Spec.Roles = []camv1.Role{{Name: "viewer", Permissions: []camv1.Permission{"camera:stream:*"}}}
		p.Spec.RevokedTokenIDs = []string{"zz", "aa"}
		p.Spec.ExternalIssuers = []camv1.ExternalIssuer{
			{Issuer: "https://ha.example", Audience: "cams", PublicKeys: []string{pemKey}, Roles: []string{"viewer"}, SubjectClaim: "email"},
			{Issuer: "https://missing.example", JWKSConfigMapRef: &camv1.ConfigMapKeyReference{Name: "nowhere", Key: "jwks.json"}},
		}
	})
	h.settle("verify")
	st := h.checkInvariants("verify")
	v := st.policy.Status.Verification
	if v == nil {
		t.Fatalf("no verification in status: %s", mustJSON(t, st.policy.Status))
	}
	if v.JWKS != st.raw {
		t.Errorf("status JWKS %s differs from the ConfigMap's %s", v.JWKS, st.raw)
	}
	if !slices.Equal(v.RevokedTokenIDs, []string{"aa", "zz"}) {
		t.Errorf("revoked IDs %v", v.RevokedTokenIDs)
	}
	if len(v.ExternalIssuers) != 2 {
		t.Fatalf("external issuers %s", mustJSON(t, v.ExternalIssuers))
	}
	ha, missing := v.ExternalIssuers[0], v.ExternalIssuers[1]
	ks, err := token.ParseJWKS([]byte(ha.JWKS))
	if err != nil || ks.Len() != 1 || ha.Audience != "cams" || ha.SubjectClaim != "email" || !slices.Equal(ha.Roles, []string{"viewer"}) {
		t.Errorf("resolved issuer %s: %v", mustJSON(t, ha), err)
	}
	if missing.JWKS != "" || !strings.Contains(missing.Message, "ConfigMap") {
		t.Errorf("unresolvable issuer published as %s", mustJSON(t, missing))
	}
	// Nothing private anywhere in the status document.
	for _, jwks := range []string{v.JWKS, ha.JWKS} {
		var set struct{ Keys []map[string]any }
		if err := json.Unmarshal([]byte(jwks), &set); err != nil {
			t.Fatal(err)
		}
		for _, k := range set.Keys {
			for _, m := range []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth"} {
				if _, ok := k[m]; ok {
					t.Errorf("status JWKS holds private member %q", m)
				}
			}
		}
	}
	var sec corev1.Secret
	if err := env.Client.Get(ctx, h.key("verify-signing-keys"), &sec); err != nil {
		t.Fatal(err)
	}
	status := mustJSON(t, st.policy.Status)
	for name, data := range sec.Data {
		for _, line := range strings.Split(string(data), "\n") {
			if len(line) > 20 && !strings.HasPrefix(line, "-----") && strings.Contains(status, line) {
				t.Errorf("status holds a line of the Secret's %s", name)
			}
		}
	}
	if st.policy.Status.ObservedGeneration != p.Generation {
		t.Errorf("observedGeneration %d, want %d", st.policy.Status.ObservedGeneration, p.Generation)
	}
}

// TestExternalKeyReusingOurKid: an external issuer whose key copies the kid of the policy's
// own key is published without keys and with the reason; the policy stays Ready.
func TestExternalKeyReusingOurKid(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.policy("clash", camv1.AlgorithmEdDSA)
	h.settle("clash")
	st := h.checkInvariants("clash")
	other, _ := token.GenerateSigningKey(token.EdDSA)
	forged := other.PublicKey()
	forged.KeyID = st.policy.Status.ActiveKeyID
	ks, err := token.NewKeySet(forged)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := ks.MarshalJWKS()
	var doc struct{ Keys []json.RawMessage }
	_ = json.Unmarshal(jwks, &doc)
	p := st.policy.DeepCopy()
	p.Spec.ExternalIssuers = []camv1.ExternalIssuer{{Issuer: "https://copycat.example", PublicKeys: []string{string(doc.Keys[0])}}}
	if err := env.Client.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	h.settle("clash")
	st = h.checkInvariants("clash")
	v := st.policy.Status.Verification
	if v == nil || len(v.ExternalIssuers) != 1 || v.ExternalIssuers[0].JWKS != "" || !strings.Contains(v.ExternalIssuers[0].Message, "reuses the kid") {
		t.Fatalf("verification %s", mustJSON(t, v))
	}
	if !meta.IsStatusConditionTrue(st.policy.Status.Conditions, camv1.ConditionReady) {
		t.Errorf("the policy is not Ready: %s", mustJSON(t, st.policy.Status.Conditions))
	}
	c := meta.FindStatusCondition(st.policy.Status.Conditions, camv1.ConditionExternalIssuersTrusted)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != camv1.ReasonExternalIssuerLeftOut || !strings.Contains(c.Message, "https://copycat.example: key") {
		t.Errorf("ExternalIssuersTrusted %+v, want False naming the issuer left out", c)
	}

	// Without the clashing issuer, the condition goes away.
	p = st.policy.DeepCopy()
	p.Spec.ExternalIssuers = nil
	if err := env.Client.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	h.settle("clash")
	st = h.checkInvariants("clash")
	if c := meta.FindStatusCondition(st.policy.Status.Conditions, camv1.ConditionExternalIssuersTrusted); c != nil {
		t.Errorf("ExternalIssuersTrusted %+v after the issuer was removed, want none", c)
	}
}
