package controllers

import (
	"testing"
	"time"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/token"
)

func TestRenewalTime(t *testing.T) {
	tok := func(iat, exp time.Time) *token.Unverified {
		return &token.Unverified{Claims: token.Claims{IssuedAt: iat, Expiry: exp}}
	}
	for _, tc := range []struct {
		name        string
		tok         *token.Unverified
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
		Token: &token.Unverified{KeyID: "k1", Type: "at+jwt", Claims: token.Claims{ID: "jti-1", Issuer: want.Issuer, Subject: "worker",
			Audience: []string{"camfleet"}, Perms: []string{"camera:stream"}, IssuedAt: t0, Expiry: t0.Add(2 * time.Hour)}},
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
