package controllers

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/token"
)

func dur(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

func testPolicy(mutate ...func(*camv1.TokenPolicy)) *camv1.TokenPolicy {
	p := &camv1.TokenPolicy{Spec: camv1.TokenPolicySpec{
		Tokens: camv1.TokenLifetimes{AccessTTL: dur(15 * time.Minute), MaxTTL: dur(4 * time.Hour)},
		Roles: []camv1.Role{
			{Name: "viewer", Permissions: []camv1.Permission{"camera:stream"}},
			{Name: "admin", Permissions: []camv1.Permission{"*"}},
		},
	}}
	p.Name, p.Namespace = "tp", "ns"
	for _, m := range mutate {
		m(p)
	}
	return p
}

func testAccessToken(mutate ...func(*camv1.AccessToken)) *camv1.AccessToken {
	at := &camv1.AccessToken{Spec: camv1.AccessTokenSpec{PolicyName: "tp", Subject: "worker", Roles: []string{"viewer"}, RenewBefore: dur(time.Hour), SecretName: "s"}}
	for _, m := range mutate {
		m(at)
	}
	return at
}

func withTTL(d time.Duration) func(*camv1.AccessToken) {
	return func(a *camv1.AccessToken) {
		a.Spec.TTL = dur(d)
	}
}

func TestResolveRequest(t *testing.T) {
	allowForever := func(p *camv1.TokenPolicy) { p.Spec.Tokens.AllowNonExpiring = true }
	forever := func(a *camv1.AccessToken) { a.Spec.NonExpiring = true }
	for _, tc := range []struct {
		name    string
		at      *camv1.AccessToken
		policy  *camv1.TokenPolicy
		ttl     time.Duration
		refusal string // reason
		message string // in the refusal
	}{
		{name: "policy's accessTTL when unset", at: testAccessToken(), policy: testPolicy(), ttl: 15 * time.Minute},
		{name: "spec ttl", at: testAccessToken(withTTL(3 * time.Hour)), policy: testPolicy(), ttl: 3 * time.Hour},
		{name: "ttl equal to maxTTL", at: testAccessToken(withTTL(4 * time.Hour)), policy: testPolicy(), ttl: 4 * time.Hour},
		{name: "ttl above maxTTL", at: testAccessToken(withTTL(4*time.Hour + time.Second)), policy: testPolicy(), refusal: ReasonTTLTooLong, message: "spec.ttl 4h0m1s exceeds TokenPolicy tp's maxTTL 4h0m0s"},
		{name: "ttl above the default maxTTL", at: testAccessToken(withTTL(721 * time.Hour)), policy: testPolicy(func(p *camv1.TokenPolicy) { p.Spec.Tokens.MaxTTL = nil }), refusal: ReasonTTLTooLong, message: "maxTTL 720h0m0s"},
		{name: "non-expiring allowed", at: testAccessToken(forever), policy: testPolicy(allowForever), ttl: 0},
		{name: "non-expiring refused", at: testAccessToken(forever), policy: testPolicy(), refusal: ReasonNonExpiringNotAllowed, message: "spec.nonExpiring"},
		{name: "policy accessTTL 0 needs an explicit wish", at: testAccessToken(), policy: testPolicy(allowForever, func(p *camv1.TokenPolicy) { p.Spec.Tokens.AccessTTL = dur(0) }), refusal: ReasonTTLRequired, message: "spec.ttl is unset"},
		{name: "unknown role", at: testAccessToken(func(a *camv1.AccessToken) { a.Spec.Roles = []string{"viewer", "root"} }), policy: testPolicy(), refusal: ReasonUnknownRole, message: `spec.roles: role "root" is not defined in TokenPolicy tp (defined: viewer, admin)`},
		{name: "no roles at all", at: testAccessToken(func(a *camv1.AccessToken) { a.Spec.Roles = []string{"x"} }), policy: testPolicy(func(p *camv1.TokenPolicy) { p.Spec.Roles = nil }), refusal: ReasonUnknownRole, message: "(defined: none)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resolveRequest(tc.at, tc.policy, "https://svc.example/")
			if tc.refusal != "" {
				var se *specError
				if !errors.As(err, &se) || se.Reason != tc.refusal || !strings.Contains(se.Message, tc.message) {
					t.Fatalf("got %#v, want refusal %s mentioning %q", err, tc.refusal, tc.message)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.TTL != tc.ttl || got.Issuer != "https://svc.example/policies/ns/tp" || got.Subject != "worker" || strings.Join(got.Audience, ",") != "camfleet" {
				t.Fatalf("got %+v", got)
			}
		})
	}

	t.Run("issuer, audience and permissions from the policy", func(t *testing.T) {
		p := testPolicy(func(p *camv1.TokenPolicy) { p.Spec.Issuer, p.Spec.Audience = "https://id.example", []string{"a", "b"} })
		got, err := resolveRequest(testAccessToken(func(a *camv1.AccessToken) { a.Spec.Roles = []string{"viewer", "admin"} }), p, "")
		if err != nil {
			t.Fatal(err)
		}
		if got.Issuer != "https://id.example" || strings.Join(got.Audience, ",") != "a,b" || strings.Join(got.Perms, ",") != "*,camera:stream" || got.RenewBefore != time.Hour {
			t.Fatalf("got %+v", got)
		}
	})

	t.Run("inputs hash", func(t *testing.T) {
		hash := func(p *camv1.TokenPolicy, m ...func(*camv1.AccessToken)) string {
			t.Helper()
			got, err := resolveRequest(testAccessToken(m...), p, "")
			if err != nil {
				t.Fatal(err)
			}
			return got.InputsHash
		}
		base := hash(testPolicy(), withTTL(time.Hour))
		same := map[string]string{
			"roles reordered": hash(testPolicy(), withTTL(time.Hour), func(a *camv1.AccessToken) { a.Spec.Roles = []string{"viewer"} }),
			"renewBefore":     hash(testPolicy(), withTTL(time.Hour), func(a *camv1.AccessToken) { a.Spec.RenewBefore = dur(time.Minute) }),
			"secretName":      hash(testPolicy(), withTTL(time.Hour), func(a *camv1.AccessToken) { a.Spec.SecretName = "t" }),
		}
		differ := map[string]string{
			"subject":            hash(testPolicy(), withTTL(time.Hour), func(a *camv1.AccessToken) { a.Spec.Subject = "other" }),
			"roles":              hash(testPolicy(), withTTL(time.Hour), func(a *camv1.AccessToken) { a.Spec.Roles = []string{"viewer", "admin"} }),
			"ttl":                hash(testPolicy(), withTTL(2*time.Hour)),
			"policy":             hash(testPolicy(), withTTL(time.Hour), func(a *camv1.AccessToken) { a.Spec.PolicyName = "other" }),
			"policy's accessTTL": hash(testPolicy()),
		}
		for what, h := range same {
			if h != base {
				t.Errorf("changing %s changed the inputs hash", what)
			}
		}
		for what, h := range differ {
			if h == base {
				t.Errorf("changing %s left the inputs hash alone", what)
			}
		}
	})
}

func TestRenewalTime(t *testing.T) {
	tok := func(iat, exp time.Time) *mintedToken { return &mintedToken{IssuedAt: iat, Expiry: exp} }
	for _, tc := range []struct {
		name        string
		tok         *mintedToken
		renewBefore time.Duration
		want        time.Time
	}{
		{"renewBefore ahead of expiry", tok(t0, t0.Add(2*time.Hour)), 30 * time.Minute, t0.Add(90 * time.Minute)},
		{"renewBefore as long as the life: two thirds", tok(t0, t0.Add(time.Hour)), time.Hour, t0.Add(40 * time.Minute)},
		{"renewBefore longer than the life: two thirds", tok(t0, t0.Add(15*time.Minute)), time.Hour, t0.Add(10 * time.Minute)},
		{"whole seconds", tok(t0, t0.Add(10*time.Second)), time.Hour, t0.Add(6 * time.Second)},
		{"never expires", tok(t0, time.Time{}), time.Hour, time.Time{}},
		{"no token", nil, time.Hour, time.Time{}},
	} {
		if got := renewalTime(tc.tok, tc.renewBefore); !got.Equal(tc.want) {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// healthy is a token that needs nothing: matching status, spec and policy, not yet due.
func healthy() renewalInput {
	want, err := resolveRequest(testAccessToken(withTTL(2*time.Hour), func(a *camv1.AccessToken) { a.Spec.RenewBefore = dur(30 * time.Minute) }), testPolicy(), "")
	if err != nil {
		panic(err)
	}
	return renewalInput{
		Status:      camv1.AccessTokenStatus{TokenID: "jti-1"},
		SecretName:  "s",
		SecretFound: true, HasToken: true,
		Token: &mintedToken{ID: "jti-1", KeyID: "k1", Type: "at+jwt", Issuer: want.Issuer, Subject: "worker",
			Audience: []string{"camfleet"}, Perms: []string{"camera:stream"}, IssuedAt: t0, Expiry: t0.Add(2 * time.Hour)},
		InputsHash: want.InputsHash,
		Want:       want,
		Published:  []string{"k0", "k1", "k2"}, ActiveKeyID: "k2",
		Revoked: []string{"jti-0"},
		Now:     t0.Add(90*time.Minute - time.Second),
	}
}

func TestMustMint(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*renewalInput)
		reason string // "" for no mint
	}{
		{"healthy, a second before renewal", func(*renewalInput) {}, ""},
		{"first token", func(in *renewalInput) {
			in.Status.TokenID, in.SecretFound, in.HasToken, in.Token = "", false, false, nil
		}, ReasonNoToken},
		{"first token into an existing empty Secret", func(in *renewalInput) { in.Status.TokenID, in.HasToken, in.Token = "", false, nil }, ReasonNoToken},
		{"Secret deleted", func(in *renewalInput) { in.SecretFound, in.HasToken, in.Token = false, false, nil }, ReasonSecretMissing},
		{"token key removed from the Secret", func(in *renewalInput) { in.HasToken, in.Token = false, nil }, ReasonSecretEdited},
		{"token does not decode", func(in *renewalInput) { in.Token = nil }, ReasonSecretEdited},
		{"another token pasted in", func(in *renewalInput) { in.Token.ID = "jti-x" }, ReasonSecretEdited},
		{"status lost after a restore", func(in *renewalInput) { in.Status.TokenID = "" }, ReasonSecretEdited},
		{"signature edited", func(in *renewalInput) { in.Rejection = token.ReasonBadSignature }, ReasonSecretEdited},
		{"edited and due: the edit is named", func(in *renewalInput) { in.Rejection, in.Now = token.ReasonMalformed, t0.Add(3*time.Hour) }, ReasonSecretEdited},
		{"spec changed", func(in *renewalInput) { in.InputsHash = "old" }, ReasonSpecChanged},
		{"no inputs record", func(in *renewalInput) { in.InputsHash = "" }, ReasonSpecChanged},
		{"issuer changed", func(in *renewalInput) { in.Want.Issuer = "https://new.example" }, ReasonPolicyIssuerChanged},
		{"audience changed", func(in *renewalInput) { in.Want.Audience = []string{"camfleet", "cloud"} }, ReasonPolicyChanged},
		{"audience reordered is the same", func(in *renewalInput) {
			in.Token.Audience, in.Want.Audience = []string{"b", "a"}, []string{"a", "b"}
		}, ""},
		{"role redefined in the policy", func(in *renewalInput) { in.Want.Perms = []string{"camera:stream", "snapshot:*"} }, ReasonPolicyChanged},
		{"key left the JWKS", func(in *renewalInput) { in.Published = []string{"k2"}; in.Rejection = token.ReasonUnknownKey }, ReasonKeyRemoved},
		{"revoked in the policy", func(in *renewalInput) { in.Revoked = append(in.Revoked, "jti-1") }, ReasonTokenRevoked},
		{"expiring token's key retired: renewal covers it", func(in *renewalInput) { in.ActiveKeyID = "k9" }, ""},
		{"non-expiring token's key retired", func(in *renewalInput) { in.Token.Expiry, in.ActiveKeyID = time.Time{}, "k9" }, ReasonKeyRetired},
		{"non-expiring token signed by the active key", func(in *renewalInput) {
			in.Token.Expiry, in.ActiveKeyID, in.Now = time.Time{}, "k1", t0.Add(1000*time.Hour)
		}, ""},
		{"renewal due to the second", func(in *renewalInput) { in.Now = t0.Add(90 * time.Minute) }, ReasonRenewalDue},
		{"expired", func(in *renewalInput) { in.Now, in.Rejection = t0.Add(3*time.Hour), token.ReasonExpired }, ReasonRenewalDue},
		{"renewBefore lengthened", func(in *renewalInput) { in.Want.RenewBefore = time.Hour }, ReasonRenewalDue},
		{"any other refusal by the verifiers", func(in *renewalInput) { in.Rejection = token.ReasonLifetimeTooLong }, ReasonTokenRejected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := healthy()
			tc.change(&in)
			reason, msg, mint := mustMint(in)
			if reason != tc.reason || mint != (tc.reason != "") {
				t.Fatalf("got %q (%v): %s; want %q", reason, mint, msg, tc.reason)
			}
			if mint && msg == "" {
				t.Fatal("a re-mint without a message")
			}
		})
	}
}

func TestDecodeToken(t *testing.T) {
	key, err := token.GenerateSigningKey(token.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	for _, aud := range [][]string{{"camfleet"}, {"a", "b"}} {
		c := token.Claims{Issuer: "iss", Subject: "sub", Audience: aud, IssuedAt: t0, Expiry: t0.Add(time.Hour), ID: "jti", Perms: []string{"*"}}
		text, err := token.Sign(c, "at+jwt", key)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeToken(text)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != "jti" || got.KeyID != key.KeyID || got.Type != "at+jwt" || got.Issuer != "iss" || got.Subject != "sub" ||
			strings.Join(got.Audience, ",") != strings.Join(aud, ",") || !got.IssuedAt.Equal(t0) || !got.Expiry.Equal(t0.Add(time.Hour)) || got.Perms[0] != "*" {
			t.Errorf("decoded %+v", got)
		}
	}
	for _, bad := range []string{"", "a.b", "a.b.c.d", "!!.e30.x", "e30.bm90anNvbg.x", "e30.eyJhdWQiOjF9.x", strings.Repeat("a", token.DefaultMaxSize+1)} {
		if _, err := decodeToken(bad); err == nil {
			t.Errorf("decoded %.40q", bad)
		}
	}
}

func TestAccessTokenConditions(t *testing.T) {
	tok := &mintedToken{ID: "jti-1", KeyID: "k1", IssuedAt: t0, Expiry: t0.Add(2 * time.Hour)}
	type want struct{ ready, reason, other, contains string }
	for _, tc := range []struct {
		name string
		o    tokenOutcome
		want want
	}{
		{"refused", tokenOutcome{Err: fmt.Errorf("wrapped: %w", refuse(ReasonTTLTooLong, "spec.ttl too long"))}, want{"False", ReasonTTLTooLong, camv1.ConditionStalled, "spec.ttl too long"}},
		{"API error", tokenOutcome{Err: errors.New("etcd is down: a long message")}, want{"False", "ReconcileFailed", camv1.ConditionReconciling, "retrying"}},
		{"waiting", tokenOutcome{Waiting: "TokenPolicy tp is not Ready"}, want{"False", camv1.ReasonDependencyNotReady, camv1.ConditionReconciling, "TokenPolicy tp is not Ready"}},
		{"ready", tokenOutcome{SecretName: "s", Token: tok, Renewal: t0.Add(90 * time.Minute)}, want{"True", camv1.ReasonSucceeded, "", "Secret s holds token jti-1 signed by key k1; it expires at 2026-01-01T02:00:00Z and is renewed at 2026-01-01T01:30:00Z"}},
		{"ready, never expires", tokenOutcome{SecretName: "s", Token: &mintedToken{ID: "jti-2", KeyID: "k1"}}, want{"True", camv1.ReasonSucceeded, "", "never expires"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conds := accessTokenConditions(tc.o)
			if len(conds) == 0 || conds[0].Type != camv1.ConditionReady || string(conds[0].Status) != tc.want.ready || conds[0].Reason != tc.want.reason || !strings.Contains(conds[0].Message, tc.want.contains) {
				t.Fatalf("got %+v", conds)
			}
			if tc.want.other == "" && len(conds) != 1 || tc.want.other != "" && (len(conds) != 2 || conds[1].Type != tc.want.other || conds[1].Status != metav1.ConditionTrue) {
				t.Fatalf("got %+v, want Ready and %q", conds, tc.want.other)
			}
			if strings.Contains(conds[0].Message, "etcd") {
				t.Fatal("an API error's text in a condition")
			}
		})
	}
}

func TestLabelValue(t *testing.T) {
	if got := labelValue("worker"); got != "worker" {
		t.Errorf("short name changed to %q", got)
	}
	long := strings.Repeat("a.b-", 60) + "z"
	a, b := labelValue(long), labelValue(long[:len(long)-1]+"y")
	if errs := validation.IsValidLabelValue(a); len(errs) > 0 || a == b {
		t.Errorf("label value %q: %v (another name gave %q)", a, errs, b)
	}
}
