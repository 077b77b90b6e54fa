package controllers

import (
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
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
