package controllers

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/publication"
	"github.com/camfleet/camfleet/internal/testkit"
	"github.com/camfleet/camfleet/internal/token"
	"github.com/camfleet/camfleet/internal/trust"
)

// tokenHarness drives an AccessTokenReconciler by hand beside the TokenPolicy harness, with
// the same fake clock and Event recorder, and records everything the reconciler logs.
type tokenHarness struct {
	*harness
	at *AccessTokenReconciler

	logs testkit.LogBuffer
	mu   sync.Mutex
	// minted is every token text seen in a Secret, to prove none leaks anywhere.
	minted []string
}

func newTokenHarness(t *testing.T) *tokenHarness {
	h := newHarness(t)
	th := &tokenHarness{harness: h, at: &AccessTokenReconciler{Client: env.Client, Recorder: h.events, Clock: h.clock, TokenServiceURL: h.r.TokenServiceURL}}
	t.Cleanup(th.assertNoLeak)
	return th
}

// rolesPolicy creates and settles a policy with two roles; its maxTTL is 4h.
func (th *tokenHarness) rolesPolicy(name string, mutate ...func(*camv1.TokenPolicy)) *camv1.TokenPolicy {
	th.t.Helper()
	roles := func(p *camv1.TokenPolicy) {
		p.Spec.Roles = []camv1.Role{
			{Name: "viewer", Permissions: []camv1.Permission{"camera:stream,snapshot:*"}},
			{Name: "admin", Permissions: []camv1.Permission{"*"}},
		}
	}
	p := th.policy(name, camv1.AlgorithmEdDSA, append([]func(*camv1.TokenPolicy){roles}, mutate...)...)
	th.settle(name)
	return p
}

// token creates an AccessToken for cloud-worker with the viewer role, a 2h ttl renewed 30m
// before expiry, written to Secret <name>-token.
func (th *tokenHarness) token(name, policy string, mutate ...func(*camv1.AccessToken)) *camv1.AccessToken {
	th.t.Helper()
	ttl := &metav1.Duration{Duration: 2 * time.Hour}
	at := &camv1.AccessToken{Spec: camv1.AccessTokenSpec{
		PolicyName: policy, Subject: "cloud-worker", Roles: []string{"viewer"}, TTL: ttl,
		RenewBefore: &metav1.Duration{Duration: 30 * time.Minute}, SecretName: name + "-token",
	}}
	at.Name, at.Namespace = name, th.ns
	for _, m := range mutate {
		m(at)
	}
	if err := env.Client.Create(context.Background(), at); err != nil {
		th.t.Fatal(err)
	}
	return at
}

// reconcileToken runs one reconcile of the named AccessToken, its log captured.
func (th *tokenHarness) reconcileToken(name string) (ctrl.Result, error) {
	ctx := ctrl.LoggerInto(context.Background(), th.logs.Logger())
	res, err := th.at.Reconcile(ctx, ctrl.Request{NamespacedName: th.key(name)})
	if s := th.secretOf(name); s != nil {
		th.remember(string(s.Data[TokenKey]))
	}
	return res, err
}

// mustReconcileToken reconciles and fails the test on an error.
func (th *tokenHarness) mustReconcileToken(name string) ctrl.Result {
	th.t.Helper()
	res, err := th.reconcileToken(name)
	if err != nil {
		th.t.Fatalf("reconcile AccessToken %s at %s: %v", name, th.clock.Now().Format(time.RFC3339), err)
	}
	return res
}

func (th *tokenHarness) remember(text string) {
	th.mu.Lock()
	defer th.mu.Unlock()
	if text != "" && !slices.Contains(th.minted, text) {
		th.minted = append(th.minted, text)
	}
}

func (th *tokenHarness) accessToken(name string) *camv1.AccessToken {
	th.t.Helper()
	at := &camv1.AccessToken{}
	if err := env.Client.Get(context.Background(), th.key(name), at); err != nil {
		th.t.Fatal(err)
	}
	return at
}

// secretOf is the AccessToken's Secret, or nil.
func (th *tokenHarness) secretOf(name string) *corev1.Secret {
	s := &corev1.Secret{}
	if err := env.Client.Get(context.Background(), th.key(name+"-token"), s); err != nil {
		return nil
	}
	return s
}

// tokenText is the JWT in the AccessToken's Secret.
func (th *tokenHarness) tokenText(name string) string {
	th.t.Helper()
	s := th.secretOf(name)
	if s == nil {
		th.t.Fatalf("AccessToken %s has no Secret", name)
	}
	return string(s.Data[TokenKey])
}

// verifier is the strict verifier an agent builds from what the policy publishes now.
func (th *tokenHarness) verifier(policy string) *token.Verifier {
	th.t.Helper()
	ctx := context.Background()
	p := &camv1.TokenPolicy{}
	var cm corev1.ConfigMap
	if err := env.Client.Get(ctx, th.key(policy), p); err != nil {
		th.t.Fatal(err)
	}
	if err := env.Client.Get(ctx, th.key(policy+"-jwks"), &cm); err != nil {
		th.t.Fatal(err)
	}
	if p.Status.Issuer != trust.Issuer(p, th.at.TokenServiceURL) {
		th.t.Fatalf("policy status issuer %q, the AccessToken controller signs for %q", p.Status.Issuer, trust.Issuer(p, th.at.TokenServiceURL))
	}
	v, _, err := trust.Verifier(p, p.Status.Issuer, trust.Published{JWKS: []byte(cm.Data[publication.JWKSKey]), Revoked: []byte(cm.Data[publication.RevokedKey])}, trust.AccessType, th.clock)
	if err != nil {
		th.t.Fatal(err)
	}
	return v
}

// verify checks the Secret's token with the published JWKS and revocations, and that it is
// the token status describes.
func (th *tokenHarness) verify(name, policy string) token.Verified {
	th.t.Helper()
	got, err := th.verifier(policy).Verify(th.tokenText(name))
	if err != nil {
		th.t.Fatalf("at %s the token in Secret %s-token does not verify against the published JWKS: %v", th.clock.Now().Format(time.RFC3339), name, err)
	}
	st := th.accessToken(name).Status
	if got.ID != st.TokenID || got.KeyID != st.KeyID {
		th.t.Fatalf("the Secret holds token %s by key %s, status says %s by key %s", got.ID, got.KeyID, st.TokenID, st.KeyID)
	}
	return got
}

// versionsOf are the resourceVersions of an AccessToken and its Secret.
func (th *tokenHarness) versionsOf(name string) string {
	rv := th.accessToken(name).ResourceVersion
	if s := th.secretOf(name); s != nil {
		rv += "/" + s.ResourceVersion
	}
	return rv
}

// assertNoLeak: no token text, nor its claims or signature segment, in any Event, log line,
// AccessToken status or condition.
func (th *tokenHarness) assertNoLeak() {
	sources := map[string][]string{}
	var list camv1.AccessTokenList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(th.ns)); err != nil {
		th.t.Error(err)
	}
	for _, at := range list.Items {
		sources["status"] = append(sources["status"], mustJSON(th.t, at.Status))
	}
	var evs corev1.EventList
	_ = env.Client.List(context.Background(), &evs, client.InNamespace(th.ns))
	for _, e := range evs.Items {
		sources["Event"] = append(sources["Event"], e.Message)
	}
	sources["Event"] = append(sources["Event"], th.drainEvents()...)
	sources["log"] = th.logs.Lines()
	th.mu.Lock()
	defer th.mu.Unlock()
	for what, texts := range sources {
		haystack := strings.Join(texts, "\n")
		for _, text := range th.minted {
			parts := strings.Split(text, ".")
			for _, needle := range append([]string{text}, parts[1:]...) {
				if len(needle) > 16 && strings.Contains(haystack, needle) {
					th.t.Errorf("token material leaked into a %s", what)
				}
			}
		}
	}
}

func readyOf(at *camv1.AccessToken) *metav1.Condition {
	return meta.FindStatusCondition(at.Status.Conditions, camv1.ConditionReady)
}

// TestAccessTokenMint: the token lands in an owned, typed, labelled Secret with its expiry
// beside it, verifies with the policy's published keys, carries the subject and the role's
// permissions, and a settled AccessToken costs no write.
func TestAccessTokenMint(t *testing.T) {
	th := newTokenHarness(t)
	th.rolesPolicy("tp")
	at := th.token("worker", "tp")

	res := th.mustReconcileToken("worker")
	if res.RequeueAfter != 90*time.Minute {
		t.Errorf("requeue after %s, want the renewal 90m away (2h ttl, 30m renewBefore)", res.RequeueAfter)
	}
	s := th.secretOf("worker")
	if s == nil {
		t.Fatal("no Secret written")
	}
	if s.Type != AccessTokenSecretType || !metav1.IsControlledBy(s, at) || s.Labels[publication.LabelManagedBy] != publication.ManagedBy || s.Labels[LabelAccessToken] != "worker" {
		t.Errorf("Secret type %q owners %v labels %v", s.Type, s.OwnerReferences, s.Labels)
	}
	got := th.verify("worker", "tp")
	perms, _ := trust.RolePermissions(th.state("tp").policy, []string{"viewer"})
	if got.Subject != "cloud-worker" || !slices.Equal(got.Perms, perms) || !got.Grants.Allows("camera", "stream", "cams/backyard") || got.Grants.Allows("camera", "admin", "x") {
		t.Errorf("verified subject %q perms %v, want cloud-worker with %v", got.Subject, got.Perms, perms)
	}
	st := th.accessToken("worker").Status
	if got.KeyID != th.state("tp").set.Active().ID {
		t.Errorf("signed by %s, not the policy's active key", got.KeyID)
	}
	if !got.IssuedAt.Equal(t0) || !got.Expiry.Equal(t0.Add(2*time.Hour)) || st.ExpirationTime == nil || !st.ExpirationTime.Time.Equal(got.Expiry) ||
		st.RenewalTime == nil || !st.RenewalTime.Time.Equal(t0.Add(90*time.Minute)) || st.IssuedTime == nil || !st.IssuedTime.Time.Equal(t0) {
		t.Errorf("status %s, token iat %s exp %s", mustJSON(t, st), got.IssuedAt, got.Expiry)
	}
	if string(s.Data[ExpiryKey]) != st.ExpirationTime.UTC().Format(time.RFC3339) || s.Annotations[AnnotationTokenID] != st.TokenID || s.Annotations[AnnotationKeyID] != st.KeyID {
		t.Errorf("Secret expiry %q annotations %v, status %s", s.Data[ExpiryKey], s.Annotations, mustJSON(t, st))
	}
	if c := readyOf(th.accessToken("worker")); c == nil || c.Status != metav1.ConditionTrue || th.accessToken("worker").Status.ObservedGeneration != at.Generation {
		t.Errorf("status %s", mustJSON(t, st))
	}
	if evs := strings.Join(th.drainEvents(), "\n"); !strings.Contains(evs, "Normal Issued") {
		t.Errorf("no Issued Event:\n%s", evs)
	}

	// Settled: ten more reconciles, even as time passes short of the renewal, write nothing.
	before := th.versionsOf("worker")
	for i := range 10 {
		th.clock.Step(time.Minute)
		res := th.mustReconcileToken("worker")
		if want := 90*time.Minute - time.Duration(i+1)*time.Minute; res.RequeueAfter != want {
			t.Fatalf("requeue after %s, want %s", res.RequeueAfter, want)
		}
	}
	if after := th.versionsOf("worker"); after != before {
		t.Errorf("a settled AccessToken was written: resourceVersions %s -> %s", before, after)
	}
	if evs := th.drainEvents(); len(evs) > 0 {
		t.Errorf("a settled AccessToken emitted Events: %v", evs)
	}
}

// TestAccessTokenRenewalWalk moves a fake clock through 32 hours, three key rotations and
// about twenty renewals, running both controllers at each deadline either of them asks for:
// the token in the Secret verifies against the published JWKS at every step, is renewed
// exactly at expiry minus renewBefore, and every renewal has a new jti.
func TestAccessTokenRenewalWalk(t *testing.T) {
	th := newTokenHarness(t)
	th.rolesPolicy("tp")
	th.token("worker", "tp")
	res := th.mustReconcileToken("worker")

	seen := map[string]bool{th.accessToken("worker").Status.TokenID: true}
	kids := map[string]bool{th.accessToken("worker").Status.KeyID: true}
	renewals := 0
	for th.clock.Now().Before(t0.Add(32 * time.Hour)) {
		prev := th.accessToken("worker").Status
		if res.RequeueAfter != prev.RenewalTime.Sub(th.clock.Now()) {
			t.Fatalf("at %s requeue after %s, want the renewal deadline %s", th.clock.Now().Format(time.RFC3339), res.RequeueAfter, prev.RenewalTime.Format(time.RFC3339))
		}
		// Whichever controller's deadline comes first; the policy runs first, as a rotation
		// may remove keys.
		step := res.RequeueAfter
		pol := th.settle("tp")
		if pol.RequeueAfter > 0 && pol.RequeueAfter < step {
			step = pol.RequeueAfter
		}
		th.clock.Step(step)
		th.settle("tp")
		th.checkInvariants("tp")
		// The current token never stops verifying while the policy moves on.
		th.verify("worker", "tp")
		res = th.mustReconcileToken("worker")
		th.verify("worker", "tp")
		st := th.accessToken("worker").Status
		if st.TokenID == prev.TokenID {
			if !th.clock.Now().Before(prev.RenewalTime.Time) {
				t.Fatalf("at %s the token due at %s was not renewed", th.clock.Now().Format(time.RFC3339), prev.RenewalTime.Format(time.RFC3339))
			}
			continue
		}
		renewals++
		if !th.clock.Now().Equal(prev.RenewalTime.Time) {
			t.Fatalf("renewed at %s, want exactly the renewal time %s", th.clock.Now().Format(time.RFC3339), prev.RenewalTime.Format(time.RFC3339))
		}
		if seen[st.TokenID] {
			t.Fatalf("renewal reused jti %s", st.TokenID)
		}
		seen[st.TokenID], kids[st.KeyID] = true, true
		if st.KeyID != th.state("tp").set.Active().ID {
			t.Fatalf("renewed with key %s, not the active key", st.KeyID)
		}
		if evs := strings.Join(th.drainEvents(), "\n"); !strings.Contains(evs, "Normal Renewed") || !strings.Contains(evs, ReasonRenewalDue) {
			t.Fatalf("renewal without a Renewed (RenewalDue) Event:\n%s", evs)
		}
	}
	if want := int(th.clock.Now().Sub(t0) / (90 * time.Minute)); renewals != want || renewals < 20 {
		t.Errorf("%d renewals by %s, want %d (every 90m)", renewals, th.clock.Now().Format(time.RFC3339), want)
	}
	if len(kids) < 4 {
		t.Errorf("tokens were signed by %d keys over three rotations, want at least 4", len(kids))
	}
}

// TestAccessTokenKeyRemoved: an emergency rotation with revoke takes the token's key out of
// the JWKS; the AccessToken is re-minted with the new key at once.
func TestAccessTokenKeyRemoved(t *testing.T) {
	th := newTokenHarness(t)
	ctx := context.Background()
	th.rolesPolicy("tp")
	th.token("worker", "tp")
	th.mustReconcileToken("worker")
	old := th.verify("worker", "tp")
	oldText := th.tokenText("worker")

	th.clock.Step(10 * time.Minute)
	p := th.state("tp").policy
	p.Annotations = map[string]string{camv1.AnnotationRotate: "incident-1", camv1.AnnotationRotateRevoke: "true"}
	if err := env.Client.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	th.settle("tp")
	if _, err := th.verifier("tp").Verify(oldText); token.ReasonOf(err) != token.ReasonUnknownKey {
		t.Fatalf("after the revoking rotation the old token gives %v, want unknown_kid", err)
	}
	res := th.mustReconcileToken("worker")
	got := th.verify("worker", "tp")
	if got.KeyID == old.KeyID || got.KeyID != th.state("tp").set.Active().ID || got.ID == old.ID {
		t.Fatalf("re-minted token %s by key %s; old %s by %s", got.ID, got.KeyID, old.ID, old.KeyID)
	}
	if !got.Expiry.Equal(th.clock.Now().Add(2*time.Hour)) || res.RequeueAfter != 90*time.Minute {
		t.Errorf("new token expires %s, requeue %s", got.Expiry, res.RequeueAfter)
	}
	if evs := strings.Join(th.drainEvents(), "\n"); !strings.Contains(evs, "Normal Renewed") || !strings.Contains(evs, ReasonKeyRemoved) {
		t.Errorf("no Renewed (KeyRemoved) Event:\n%s", evs)
	}
}

// TestAccessTokenRefusals: what the policy cannot honour stalls the AccessToken with a message
// naming the field, a Warning Event and no Secret; a foreign Secret is never touched. A
// non-expiring token is issued only where the policy allows it.
func TestAccessTokenRefusals(t *testing.T) {
	th := newTokenHarness(t)
	ctx := context.Background()
	th.rolesPolicy("tp")
	foreign := &corev1.Secret{StringData: map[string]string{"mine": "keep me"}}
	foreign.Name, foreign.Namespace = "taken-token", th.ns
	if err := env.Client.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, reason, field string
		mutate              func(*camv1.AccessToken)
	}{
		{"long", ReasonTTLTooLong, "spec.ttl 5h0m0s exceeds", func(a *camv1.AccessToken) {
			d := &metav1.Duration{Duration: 5 * time.Hour}
			a.Spec.TTL = d
		}},
		{"forever", ReasonNonExpiringNotAllowed, "spec.nonExpiring", func(a *camv1.AccessToken) {
			a.Spec.TTL, a.Spec.NonExpiring = nil, true
		}},
		{"root", ReasonUnknownRole, `spec.roles: role "superuser"`, func(a *camv1.AccessToken) {
			a.Spec.Roles = []string{"viewer", "superuser"}
		}},
		{"taken", camv1.ReasonInvalidSpec, "spec.secretName: Secret taken-token exists and is not owned", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mutate []func(*camv1.AccessToken)
			if tc.mutate != nil {
				mutate = append(mutate, tc.mutate)
			}
			th.token(tc.name, "tp", mutate...)
			_, err := th.reconcileToken(tc.name)
			if !errors.Is(err, reconcile.TerminalError(nil)) {
				t.Fatalf("want a terminal error, got %v", err)
			}
			at := th.accessToken(tc.name)
			stalled := meta.FindStatusCondition(at.Status.Conditions, camv1.ConditionStalled)
			ready := readyOf(at)
			if stalled == nil || stalled.Status != metav1.ConditionTrue || stalled.Reason != tc.reason || !strings.Contains(stalled.Message, tc.field) ||
				ready == nil || ready.Status != metav1.ConditionFalse || at.Status.ObservedGeneration != 0 || at.Status.TokenID != "" {
				t.Fatalf("status %s", mustJSON(t, at.Status))
			}
			if evs := strings.Join(th.drainEvents(), "\n"); !strings.Contains(evs, "Warning "+tc.reason+" "+tc.field) {
				t.Errorf("no Warning %s Event:\n%s", tc.reason, evs)
			}
			s := th.secretOf(tc.name)
			if tc.name == "taken" {
				if s == nil || len(s.Data) != 1 || string(s.Data["mine"]) != "keep me" || len(s.OwnerReferences) != 0 {
					t.Fatalf("the foreign Secret was touched: %v", s)
				}
			} else if s != nil {
				t.Fatalf("a refused AccessToken wrote Secret %s", s.Name)
			}
		})
	}

	t.Run("nonExpiringAllowed", func(t *testing.T) {
		th.rolesPolicy("lenient", func(p *camv1.TokenPolicy) { p.Spec.Tokens.AllowNonExpiring = true })
		th.token("kiosk", "lenient", func(a *camv1.AccessToken) { a.Spec.TTL, a.Spec.NonExpiring = nil, true })
		if res := th.mustReconcileToken("kiosk"); res.RequeueAfter != 0 {
			t.Errorf("a non-expiring token asks to be woken after %s", res.RequeueAfter)
		}
		got := th.verify("kiosk", "lenient")
		st := th.accessToken("kiosk").Status
		if !got.Expiry.IsZero() || st.ExpirationTime != nil || st.RenewalTime != nil || string(th.secretOf("kiosk").Data[ExpiryKey]) != "never" {
			t.Fatalf("non-expiring token: exp %s, status %s, Secret expiry %q", got.Expiry, mustJSON(t, st), th.secretOf("kiosk").Data[ExpiryKey])
		}
		if tok, err := token.ReadUnverified(th.tokenText("kiosk")); err != nil || !tok.Expiry.IsZero() {
			t.Fatal("the non-expiring token has an exp claim")
		}
		// A verifier that does not allow non-expiring tokens refuses it: the policy is what
		// lets it through.
		if _, err := th.verifier("tp").Verify(th.tokenText("kiosk")); err == nil {
			t.Fatal("another policy's verifier accepted the token")
		}
		// Time alone never renews it.
		th.clock.Step(1000 * time.Hour)
		before := th.versionsOf("kiosk")
		th.mustReconcileToken("kiosk")
		if th.versionsOf("kiosk") != before || th.accessToken("kiosk").Status.TokenID != got.ID {
			t.Fatal("a non-expiring token was re-minted as time passed")
		}
		// Once its key stops signing it is re-minted with the new key, while the old token
		// still verifies: its holder has the retired key's retention to switch.
		old := th.tokenText("kiosk")
		th.settle("lenient")
		th.clock.Step(time.Hour)
		th.settle("lenient")
		th.mustReconcileToken("kiosk")
		now := th.verify("kiosk", "lenient")
		if now.KeyID == got.KeyID || now.KeyID != th.state("lenient").set.Active().ID {
			t.Fatalf("after a rotation the non-expiring token is signed by %s (was %s)", now.KeyID, got.KeyID)
		}
		if _, err := th.verifier("lenient").Verify(old); err != nil {
			t.Fatalf("the previous non-expiring token stopped verifying at once: %v", err)
		}
		if evs := strings.Join(th.drainEvents(), "\n"); !strings.Contains(evs, ReasonKeyRetired) {
			t.Errorf("no Renewed (KeyRetired) Event:\n%s", evs)
		}
	})
}

// TestAccessTokenRevocation: listing the token's jti in the policy publishes it beside the
// JWKS and makes the agents' verifier refuse the token; the controller then mints a fresh
// one, so the client holding the Secret keeps working while the leaked token is dead.
func TestAccessTokenRevocation(t *testing.T) {
	th := newTokenHarness(t)
	ctx := context.Background()
	th.rolesPolicy("tp")
	th.token("worker", "tp")
	th.mustReconcileToken("worker")
	jti := th.verify("worker", "tp").ID
	revoked := th.tokenText("worker")

	p := th.state("tp").policy
	p.Spec.RevokedTokenIDs = []string{jti}
	if err := env.Client.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	th.settle("tp")
	var cm corev1.ConfigMap
	if err := env.Client.Get(ctx, th.key("tp-jwks"), &cm); err != nil || !strings.Contains(cm.Data[publication.RevokedKey], `"`+jti+`"`) {
		t.Fatalf("revoked.json %q does not list %s (%v)", cm.Data[publication.RevokedKey], jti, err)
	}
	if _, err := th.verifier("tp").Verify(revoked); token.ReasonOf(err) != token.ReasonRevoked {
		t.Fatalf("the revoked token gives %v, want revoked", err)
	}
	th.mustReconcileToken("worker")
	if got := th.verify("worker", "tp"); got.ID == jti {
		t.Fatal("the revoked token was kept")
	}
	if evs := strings.Join(th.drainEvents(), "\n"); !strings.Contains(evs, ReasonTokenRevoked) {
		t.Errorf("no Renewed (TokenRevoked) Event:\n%s", evs)
	}
}

// TestAccessTokenHeals: a hand-edited token is re-minted, an edited expiry rewritten, a
// deleted Secret re-created, and a spec change re-mints with the new roles.
func TestAccessTokenHeals(t *testing.T) {
	th := newTokenHarness(t)
	ctx := context.Background()
	th.rolesPolicy("tp")
	th.token("worker", "tp")
	th.mustReconcileToken("worker")
	first := th.verify("worker", "tp").ID

	edit := func(f func(*corev1.Secret)) {
		t.Helper()
		s := th.secretOf("worker")
		f(s)
		if err := env.Client.Update(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		what, reason string
		change       func()
		remint       bool
	}{
		{"a flipped signature character", ReasonSecretEdited, func() {
			edit(func(s *corev1.Secret) {
				b := s.Data[TokenKey]
				b[len(b)-2] ^= 1
			})
		}, true},
		{"another token pasted in", ReasonSecretEdited, func() {
			edit(func(s *corev1.Secret) { s.Data[TokenKey] = []byte("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.") })
		}, true},
		{"an edited expiry", "", func() {
			edit(func(s *corev1.Secret) { s.Data[ExpiryKey] = []byte("2099-01-01T00:00:00Z") })
		}, false},
		{"a deleted Secret", ReasonSecretMissing, func() {
			if err := env.Client.Delete(ctx, th.secretOf("worker")); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"a new role", ReasonSpecChanged, func() {
			at := th.accessToken("worker")
			at.Spec.Roles = []string{"viewer", "admin"}
			if err := env.Client.Update(ctx, at); err != nil {
				t.Fatal(err)
			}
		}, true},
	}
	prev := first
	for _, s := range steps {
		th.clock.Step(time.Minute)
		s.change()
		th.mustReconcileToken("worker")
		got := th.verify("worker", "tp")
		if (got.ID != prev) != s.remint {
			t.Fatalf("after %s: token %s, before %s; want re-minted=%v", s.what, got.ID, prev, s.remint)
		}
		evs := strings.Join(th.drainEvents(), "\n")
		if s.remint && !strings.Contains(evs, "Normal Renewed renewed the token in Secret worker-token ("+s.reason) {
			t.Errorf("after %s no Renewed (%s) Event:\n%s", s.what, s.reason, evs)
		}
		if exp := string(th.secretOf("worker").Data[ExpiryKey]); exp != got.Expiry.Format(time.RFC3339) {
			t.Errorf("after %s the Secret says expiry %s, the token %s", s.what, exp, got.Expiry.Format(time.RFC3339))
		}
		prev = got.ID
	}
	if got := th.verify("worker", "tp"); !slices.Contains(got.Perms, "*") {
		t.Errorf("after adding admin the token grants %v", got.Perms)
	}
	before := th.versionsOf("worker")
	for range 10 {
		th.mustReconcileToken("worker")
	}
	if th.versionsOf("worker") != before {
		t.Error("the healed AccessToken was written again")
	}
}

// TestAccessTokenWaitsForPolicy: without a ready policy the AccessToken waits, not stalls,
// and is issued once the policy is ready.
func TestAccessTokenWaitsForPolicy(t *testing.T) {
	th := newTokenHarness(t)
	th.token("worker", "later", func(a *camv1.AccessToken) { a.Spec.Roles = nil })
	for _, step := range []string{"missing", "not yet reconciled"} {
		res, err := th.reconcileToken("worker")
		if err != nil || res.RequeueAfter != dependencyRetry {
			t.Fatalf("policy %s: result %v, error %v; want a retry after %s", step, res, err, dependencyRetry)
		}
		at := th.accessToken("worker")
		ready, rec := readyOf(at), meta.FindStatusCondition(at.Status.Conditions, camv1.ConditionReconciling)
		if ready == nil || ready.Reason != camv1.ReasonDependencyNotReady || !strings.Contains(ready.Message, "TokenPolicy later") || rec == nil ||
			meta.FindStatusCondition(at.Status.Conditions, camv1.ConditionStalled) != nil || th.secretOf("worker") != nil {
			t.Fatalf("policy %s: status %s", step, mustJSON(t, at.Status))
		}
		if step == "missing" {
			th.policy("later", camv1.AlgorithmEdDSA)
		}
	}
	th.settle("later")
	th.mustReconcileToken("worker")
	th.verify("worker", "later")
	at := th.accessToken("worker")
	if c := readyOf(at); c.Status != metav1.ConditionTrue || len(at.Status.Conditions) != 1 {
		t.Fatalf("status %s", mustJSON(t, at.Status))
	}
}

// TestAccessTokenManager runs both controllers the way the binary does (restricted caches,
// real clock, watches): an AccessToken created before its policy is issued as soon as the
// policy is ready, well before its 30s retry; a revoking rotation and a deleted Secret are
// healed through the watches.
func TestAccessTokenManager(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	startManager(t, ns, Options{})

	at := &camv1.AccessToken{Spec: camv1.AccessTokenSpec{PolicyName: "tp", Subject: "cloud-worker", SecretName: "worker-token"}}
	at.Name, at.Namespace = "worker", ns
	if err := env.Client.Create(ctx, at); err != nil {
		t.Fatal(err)
	}
	status := func() camv1.AccessTokenStatus {
		got := &camv1.AccessToken{}
		_ = env.Client.Get(ctx, client.ObjectKeyFromObject(at), got)
		return got.Status
	}
	testkit.Eventually(t, 10*time.Second, "the AccessToken to wait for its policy", func() (bool, string) {
		c := meta.FindStatusCondition(status().Conditions, camv1.ConditionReady)
		return c != nil && c.Reason == camv1.ReasonDependencyNotReady, mustJSON(t, status())
	})
	p := &camv1.TokenPolicy{}
	p.Name, p.Namespace = "tp", ns
	if err := env.Client.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	issued := func(what string, cond func(camv1.AccessTokenStatus) bool) {
		t.Helper()
		testkit.Eventually(t, 15*time.Second, what, func() (bool, string) {
			st := status()
			c := meta.FindStatusCondition(st.Conditions, camv1.ConditionReady)
			var s corev1.Secret
			err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "worker-token"}, &s)
			ok := c != nil && c.Status == metav1.ConditionTrue && err == nil && s.Annotations[AnnotationTokenID] == st.TokenID && cond(st)
			return ok, mustJSON(t, st)
		})
	}
	issued("a token once the policy is ready", func(st camv1.AccessTokenStatus) bool { return st.TokenID != "" })
	first := status()

	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(p), p); err != nil {
		t.Fatal(err)
	}
	// A patch: the running controller writes the policy's status meanwhile.
	base := p.DeepCopy()
	p.Annotations = map[string]string{camv1.AnnotationRotate: "now", camv1.AnnotationRotateRevoke: "true"}
	if err := env.Client.Patch(ctx, p, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
	issued("a token by the new key after a revoking rotation", func(st camv1.AccessTokenStatus) bool { return st.KeyID != first.KeyID })

	second := status()
	if err := env.Client.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "worker-token"}}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	issued("the deleted Secret re-created", func(st camv1.AccessTokenStatus) bool { return st.TokenID != second.TokenID })

	// A Secret the controller's cache cannot see (no camfleet label) is still never taken over.
	foreign := &corev1.Secret{StringData: map[string]string{"mine": "keep me"}}
	foreign.Name, foreign.Namespace = "taken-token", ns
	if err := env.Client.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	taken := &camv1.AccessToken{Spec: camv1.AccessTokenSpec{PolicyName: "tp", Subject: "cloud-worker", SecretName: "taken-token"}}
	taken.Name, taken.Namespace = "taken", ns
	if err := env.Client.Create(ctx, taken); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 15*time.Second, "the AccessToken writing to a foreign Secret to stall", func() (bool, string) {
		got := &camv1.AccessToken{}
		_ = env.Client.Get(ctx, client.ObjectKeyFromObject(taken), got)
		c := meta.FindStatusCondition(got.Status.Conditions, camv1.ConditionStalled)
		return c != nil && c.Reason == camv1.ReasonInvalidSpec && strings.Contains(c.Message, "spec.secretName"), mustJSON(t, got.Status)
	})
	var s corev1.Secret
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(foreign), &s); err != nil || len(s.Data) != 1 || len(s.OwnerReferences) != 0 || len(s.Labels) != 0 {
		t.Fatalf("the foreign Secret was touched: %v %v", err, s.ObjectMeta)
	}
}

// TestAccessTokenNoticesItsSecretAtOnce runs the controller as the binary does, with a token
// renewed only after 23 hours, so nothing but the watch on the Secrets AccessTokens write can
// wake it within the test: a deleted Secret is written again, and a Secret taken over (its
// owner reference replaced, with camfleet's labels removed, which the label-filtered cache sees
// as a delete, or kept) stalls its AccessToken, within seconds and without any change to the
// AccessToken. The taken-over Secrets are not written.
func TestAccessTokenNoticesItsSecretAtOnce(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	startManager(t, ns, Options{})
	p := &camv1.TokenPolicy{}
	p.Name, p.Namespace = "tp", ns
	if err := env.Client.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	// Another object to own the taken-over Secrets: whoever takes a Secret over.
	thief := &corev1.ConfigMap{}
	thief.Name, thief.Namespace = "thief", ns
	if err := env.Client.Create(ctx, thief); err != nil {
		t.Fatal(err)
	}
	get := func(t *testing.T, name string) *camv1.AccessToken {
		at := &camv1.AccessToken{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	secret := func(name string) (*corev1.Secret, error) {
		s := &corev1.Secret{}
		return s, env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name + "-token"}, s)
	}
	// issued awaits a Ready AccessToken whose Secret holds a token other than old.
	issued := func(t *testing.T, name, old string) *camv1.AccessToken {
		t.Helper()
		testkit.Eventually(t, 15*time.Second, "AccessToken "+name+" issued", func() (bool, string) {
			at := get(t, name)
			s, err := secret(name)
			ok := meta.IsStatusConditionTrue(at.Status.Conditions, camv1.ConditionReady) && err == nil &&
				s.Annotations[AnnotationTokenID] == at.Status.TokenID && at.Status.TokenID != old
			return ok, mustJSON(t, at.Status)
		})
		return get(t, name)
	}
	stalled := func(t *testing.T, name string) {
		t.Helper()
		testkit.Eventually(t, 15*time.Second, "AccessToken "+name+" to stall on its taken-over Secret", func() (bool, string) {
			at := get(t, name)
			c := meta.FindStatusCondition(at.Status.Conditions, camv1.ConditionStalled)
			return c != nil && c.Reason == camv1.ReasonInvalidSpec && strings.HasPrefix(c.Message, "spec.secretName: Secret "+name+"-token exists and is not owned"), mustJSON(t, at.Status)
		})
	}
	takeOver := func(t *testing.T, name string, keepLabels bool) {
		t.Helper()
		// Retried on a conflict: the running controller may write the Secret meanwhile.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			s, err := secret(name)
			if err != nil {
				return err
			}
			s.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: thief.Name, UID: thief.UID}}
			if !keepLabels {
				s.Labels = map[string]string{"app.kubernetes.io/managed-by": "someone-else"}
			}
			s.Data = map[string][]byte{"mine": []byte("keep me")}
			return env.Client.Update(ctx, s)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	untouched := func(t *testing.T, name string) {
		t.Helper()
		s, err := secret(name)
		if err != nil || len(s.Data) != 1 || string(s.Data["mine"]) != "keep me" || metav1.IsControlledBy(s, get(t, name)) {
			t.Fatalf("the taken-over Secret of %s was written: %v %v", name, err, s.ObjectMeta)
		}
	}
	for _, name := range []string{"deleted", "unlabelled", "labelled"} {
		at := &camv1.AccessToken{Spec: camv1.AccessTokenSpec{PolicyName: "tp", Subject: "worker", SecretName: name + "-token",
			TTL: &metav1.Duration{Duration: 24 * time.Hour}, RenewBefore: &metav1.Duration{Duration: time.Hour}}}
		at.Name, at.Namespace = name, ns
		if err := env.Client.Create(ctx, at); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("deleted", func(t *testing.T) {
		first := issued(t, "deleted", "")
		if err := env.Client.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "deleted-token"}}); err != nil {
			t.Fatal(err)
		}
		again := issued(t, "deleted", first.Status.TokenID)
		if again.Generation != first.Generation {
			t.Fatalf("the AccessToken changed (generation %d -> %d)", first.Generation, again.Generation)
		}
	})
	t.Run("taken over, camfleet's labels removed", func(t *testing.T) {
		before := issued(t, "unlabelled", "")
		takeOver(t, "unlabelled", false)
		stalled(t, "unlabelled")
		untouched(t, "unlabelled")
		if after := get(t, "unlabelled"); after.Generation != before.Generation {
			t.Fatalf("the AccessToken changed (generation %d -> %d)", before.Generation, after.Generation)
		}
	})
	t.Run("taken over, labels kept", func(t *testing.T) {
		issued(t, "labelled", "")
		takeOver(t, "labelled", true)
		stalled(t, "labelled")
		untouched(t, "labelled")
	})
}
