package controllers

import (
	"fmt"
	"slices"
	"strings"
	"time"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/token"
)

// Reasons a token is (re-)minted, the first check of the renewal chain that triggered.
const (
	ReasonNoToken             = "NoToken"
	ReasonSecretMissing       = "SecretMissing"
	ReasonSecretEdited        = "SecretEdited"
	ReasonSpecChanged         = "SpecChanged"
	ReasonPolicyIssuerChanged = "PolicyIssuerChanged"
	ReasonPolicyChanged       = "PolicyChanged"
	ReasonKeyRemoved          = "KeyRemoved"
	ReasonTokenRevoked        = "TokenRevoked"
	ReasonKeyRetired          = "KeyRetired"
	ReasonRenewalDue          = "RenewalDue"
	ReasonTokenRejected       = "TokenRejected"
)

// renewalTime is when a token must be replaced: renewBefore ahead of its expiry, or at two
// thirds of its life when renewBefore is not shorter than the life (as cert-manager does; an
// AccessToken with the default renewBefore of 1h under a policy whose accessTTL is 15m would
// otherwise be due the moment it is minted). Zero for a token that never expires.
func renewalTime(t *token.Unverified, renewBefore time.Duration) time.Time {
	if t == nil || t.Expiry.IsZero() {
		return time.Time{}
	}
	if life := t.Expiry.Sub(t.IssuedAt); !t.IssuedAt.IsZero() && (renewBefore >= life || renewBefore <= 0) {
		renewBefore = life / 3
	}
	return t.Expiry.Add(-renewBefore).Truncate(time.Second)
}

// renewalInput is everything the re-mint decision depends on.
type renewalInput struct {
	// Status is the AccessToken's status: the token it last minted.
	Status     camv1.AccessTokenStatus
	SecretName string
	// SecretFound and HasToken say what the Secret holds; Token is its token read without
	// verification, nil when absent or unreadable.
	SecretFound, HasToken bool
	Token                 *token.Unverified
	// InputsHash is the Secret's record of what its token was minted for.
	InputsHash string
	// Rejection is the strict verifier's verdict on the token, "" when it verifies.
	Rejection token.Reason
	Want      tokenRequest
	// Published are the kids in the policy's JWKS; ActiveKeyID is the one that signs.
	Published   []string
	ActiveKeyID string
	// Revoked are the token IDs the policy revokes (its spec and what it has published).
	Revoked []string
	Now     time.Time
}

// renewalCheck is one reason to mint a new token: it returns the reason, a message for the
// Event, and whether it triggered.
type renewalCheck func(renewalInput) (reason, message string, mint bool)

// renewalChecks run in order; the first that triggers names why a token is minted.
var renewalChecks = []renewalCheck{
	tokenMissing, secretEdited, specChanged, policyIssuerChanged, policyChanged,
	keyRemoved, tokenRevoked, keyRetired, renewalDue, tokenRejected,
}

// mustMint says whether the token in the Secret must be replaced now, and why.
func mustMint(in renewalInput) (reason, message string, mint bool) {
	for _, check := range renewalChecks {
		if reason, message, mint := check(in); mint {
			return reason, message, true
		}
	}
	return "", "", false
}

func tokenMissing(in renewalInput) (string, string, bool) {
	switch {
	case in.Status.TokenID == "" && !in.HasToken:
		return ReasonNoToken, "no token has been issued yet", true
	case !in.SecretFound:
		return ReasonSecretMissing, fmt.Sprintf("Secret %s does not exist", in.SecretName), true
	case !in.HasToken:
		return ReasonSecretEdited, fmt.Sprintf("Secret %s holds no %q", in.SecretName, TokenKey), true
	}
	return "", "", false
}

// tamperReasons are the verifier's verdicts that only an edit of the token can cause.
var tamperReasons = []token.Reason{
	token.ReasonMalformed, token.ReasonTooLarge, token.ReasonForbiddenHeader, token.ReasonUnsupportedAlgorithm,
	token.ReasonAlgorithmMismatch, token.ReasonMissingKeyID, token.ReasonWrongType, token.ReasonBadSignature,
	token.ReasonBadClaim, token.ReasonMissingClaim,
}

func secretEdited(in renewalInput) (string, string, bool) {
	switch {
	case in.Token == nil:
		return ReasonSecretEdited, fmt.Sprintf("the token in Secret %s does not decode", in.SecretName), true
	case in.Token.ID != in.Status.TokenID:
		return ReasonSecretEdited, fmt.Sprintf("the token in Secret %s is not the token %q this AccessToken minted", in.SecretName, in.Status.TokenID), true
	case slices.Contains(tamperReasons, in.Rejection):
		return ReasonSecretEdited, fmt.Sprintf("the token in Secret %s fails verification (%s)", in.SecretName, in.Rejection), true
	}
	return "", "", false
}

func specChanged(in renewalInput) (string, string, bool) {
	if in.InputsHash != in.Want.InputsHash {
		return ReasonSpecChanged, "the policy, subject, roles or lifetime asked for changed since the token was minted", true
	}
	return "", "", false
}

func policyIssuerChanged(in renewalInput) (string, string, bool) {
	if in.Token.Issuer != in.Want.Issuer {
		return ReasonPolicyIssuerChanged, fmt.Sprintf("the policy's issuer is now %s", in.Want.Issuer), true
	}
	return "", "", false
}

func policyChanged(in renewalInput) (string, string, bool) {
	sorted := func(s []string) []string { return slices.Sorted(slices.Values(s)) }
	switch {
	case !slices.Equal(sorted(in.Token.Audience), sorted(in.Want.Audience)):
		return ReasonPolicyChanged, fmt.Sprintf("the policy's audience is now %s", strings.Join(in.Want.Audience, ", ")), true
	case !slices.Equal(sorted(in.Token.Perms), sorted(in.Want.Perms)):
		return ReasonPolicyChanged, "the policy's roles now grant different permissions", true
	}
	return "", "", false
}

func keyRemoved(in renewalInput) (string, string, bool) {
	if !slices.Contains(in.Published, in.Token.KeyID) {
		return ReasonKeyRemoved, fmt.Sprintf("key %s that signed the token left the policy's JWKS", in.Token.KeyID), true
	}
	return "", "", false
}

func tokenRevoked(in renewalInput) (string, string, bool) {
	if slices.Contains(in.Revoked, in.Token.ID) {
		return ReasonTokenRevoked, fmt.Sprintf("token %s is revoked by the policy", in.Token.ID), true
	}
	return "", "", false
}

// keyRetired re-mints a non-expiring token once its key stops signing, so its holder has the
// key's whole retention to pick up the new token before the old one stops verifying. An
// expiring token is renewed within that retention anyway.
func keyRetired(in renewalInput) (string, string, bool) {
	if in.Token.Expiry.IsZero() && in.ActiveKeyID != "" && in.Token.KeyID != in.ActiveKeyID {
		return ReasonKeyRetired, fmt.Sprintf("key %s that signed the token no longer signs; key %s does", in.Token.KeyID, in.ActiveKeyID), true
	}
	return "", "", false
}

func renewalDue(in renewalInput) (string, string, bool) {
	if at := renewalTime(in.Token, in.Want.RenewBefore); !at.IsZero() && !in.Now.Before(at) {
		return ReasonRenewalDue, fmt.Sprintf("the token expires at %s and was due for renewal at %s", in.Token.Expiry.Format(time.RFC3339), at.Format(time.RFC3339)), true
	}
	return "", "", false
}

// tokenRejected is the backstop: whatever else makes the policy's verifiers refuse the token.
func tokenRejected(in renewalInput) (string, string, bool) {
	if in.Rejection != "" {
		return ReasonTokenRejected, fmt.Sprintf("the policy's verifiers refuse the token (%s)", in.Rejection), true
	}
	return "", "", false
}
