package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/token"
	"github.com/camfleet/camfleet/internal/trust"
)

// Reasons an AccessToken is refused. Each is the Stalled and Ready reason and the Warning
// Event's reason; the message names the field and what to do.
const (
	// ReasonTTLTooLong: spec.ttl exceeds the policy's maxTTL, so the policy's key retention
	// and its verifiers could not cover the token's whole life.
	ReasonTTLTooLong = "TTLTooLong"
	// ReasonTTLRequired: spec.ttl is unset and the policy's accessTTL is 0 (non-expiring);
	// a token that never expires must be asked for with nonExpiring: true.
	ReasonTTLRequired = "TTLRequired"
	// ReasonNonExpiringNotAllowed: spec.nonExpiring is true but the policy does not set
	// spec.tokens.allowNonExpiring.
	ReasonNonExpiringNotAllowed = "NonExpiringNotAllowed"
	// ReasonUnknownRole: spec.roles names a role the policy does not define.
	ReasonUnknownRole = "UnknownRole"
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

// Data keys, type, labels and annotations of the Secret an AccessToken writes.
const (
	// AccessTokenSecretType marks the Secrets that hold an AccessToken's JWT.
	AccessTokenSecretType = "camfleet.io/access-token"
	// TokenKey is the Secret data key of the JWT.
	TokenKey = "token"
	// ExpiryKey is the Secret data key of the token's expiry, RFC 3339, or "never".
	ExpiryKey = "expiry"
	// LabelAccessToken names the AccessToken that owns a Secret.
	LabelAccessToken = "camfleet.io/access-token"
	// AnnotationTokenID and AnnotationKeyID are the jti and kid of the token in the Secret:
	// public facts, so a reader need not decode the token to revoke it.
	AnnotationTokenID = "camfleet.io/token-id"
	AnnotationKeyID   = "camfleet.io/key-id"
	// AnnotationInputsHash is the hash of what the token was minted for (policy, subject,
	// roles, lifetime), so a spec change re-mints it.
	AnnotationInputsHash = "camfleet.io/inputs-hash"
)

// specError is a spec the controller cannot act on: the user must change something.
type specError struct{ Reason, Message string }

func (e *specError) Error() string { return e.Message }

func refuse(reason, format string, args ...any) error {
	return &specError{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// tokenRequest is an AccessToken resolved against its policy: what its token must say.
type tokenRequest struct {
	Issuer      string
	Audience    []string
	Subject     string
	Perms       []string
	TTL         time.Duration // 0 for a non-expiring token
	RenewBefore time.Duration
	InputsHash  string
}

// resolveRequest checks an AccessToken against its policy and says what its token must hold.
// A refusal is a *specError naming the field.
func resolveRequest(at *camv1.AccessToken, p *camv1.TokenPolicy, serviceURL string) (tokenRequest, error) {
	life := trust.LifetimesOf(p)
	s := at.Spec
	var ttl time.Duration
	switch {
	case s.NonExpiring:
		if !life.AllowNonExpiring {
			return tokenRequest{}, refuse(ReasonNonExpiringNotAllowed, "spec.nonExpiring: TokenPolicy %s does not allow non-expiring tokens (spec.tokens.allowNonExpiring); set a ttl instead", p.Name)
		}
	case s.TTL != nil:
		ttl = s.TTL.Duration
	default:
		ttl = life.Access
		if ttl == 0 {
			return tokenRequest{}, refuse(ReasonTTLRequired, "spec.ttl is unset and TokenPolicy %s's accessTTL is 0 (never expires); set spec.ttl, or nonExpiring: true for a token that never expires", p.Name)
		}
	}
	if ttl > life.Max {
		return tokenRequest{}, refuse(ReasonTTLTooLong, "spec.ttl %s exceeds TokenPolicy %s's maxTTL %s: its verifiers refuse longer lifetimes and its retired keys stay published only maxTTL plus leeway; set a ttl of at most %s", ttl, p.Name, life.Max, life.Max)
	}
	defined := make([]string, 0, len(p.Spec.Roles))
	for _, r := range p.Spec.Roles {
		defined = append(defined, r.Name)
	}
	for _, role := range s.Roles {
		if !slices.Contains(defined, role) {
			known := strings.Join(defined, ", ")
			if known == "" {
				known = "none"
			}
			return tokenRequest{}, refuse(ReasonUnknownRole, "spec.roles: role %q is not defined in TokenPolicy %s (defined: %s)", role, p.Name, known)
		}
	}
	roles := slices.Sorted(slices.Values(s.Roles))
	perms, err := trust.RolePermissions(p, roles)
	if err != nil {
		return tokenRequest{}, refuse(camv1.ReasonInvalidSpec, "spec.roles: %v", err)
	}
	aud := slices.Clone(p.Spec.Audience)
	if len(aud) == 0 {
		aud = []string{"camfleet"}
	}
	renewBefore := time.Hour
	if s.RenewBefore != nil {
		renewBefore = s.RenewBefore.Duration
	}
	return tokenRequest{
		Issuer: trust.Issuer(p, serviceURL), Audience: aud, Subject: s.Subject, Perms: perms,
		TTL: ttl, RenewBefore: renewBefore, InputsHash: inputsHash(s.PolicyName, s.Subject, roles, ttl, s.NonExpiring),
	}, nil
}

// inputsHash identifies what a token was minted for. renewBefore is left out: changing it
// moves the next renewal, it does not invalidate the token.
func inputsHash(policy, subject string, sortedRoles []string, ttl time.Duration, nonExpiring bool) string {
	b, _ := json.Marshal(struct {
		V           int      `json:"v"`
		Policy      string   `json:"policy"`
		Subject     string   `json:"subject"`
		Roles       []string `json:"roles"`
		TTL         int64    `json:"ttl"`
		NonExpiring bool     `json:"nonExpiring"`
	}{1, policy, subject, sortedRoles, int64(ttl / time.Second), nonExpiring})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// mintedToken is what the controller reads back from the token in a Secret: public claims
// and header fields only. It is decoded without verification, to decide what to do; the
// strict verifier judges the token separately.
type mintedToken struct {
	ID, KeyID, Type  string
	Issuer, Subject  string
	Audience, Perms  []string
	IssuedAt, Expiry time.Time
}

// decodeToken reads a compact JWS's header and claims without checking its signature.
func decodeToken(s string) (*mintedToken, error) {
	if len(s) > token.DefaultMaxSize {
		return nil, errors.New("longer than any token the controller mints")
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a compact JWS")
	}
	var hdr struct {
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}
	var cl struct {
		Iss   string          `json:"iss"`
		Sub   string          `json:"sub"`
		Aud   json.RawMessage `json:"aud"`
		Exp   int64           `json:"exp"`
		Iat   int64           `json:"iat"`
		Jti   string          `json:"jti"`
		Perms []string        `json:"perms"`
	}
	for i, v := range []any{&hdr, &cl} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return nil, errors.New("not base64url")
		}
		if err := json.Unmarshal(raw, v); err != nil {
			return nil, errors.New("not a JSON object")
		}
	}
	t := &mintedToken{ID: cl.Jti, KeyID: hdr.Kid, Type: hdr.Typ, Issuer: cl.Iss, Subject: cl.Sub, Perms: cl.Perms}
	if len(cl.Aud) > 0 && json.Unmarshal(cl.Aud, &t.Audience) != nil {
		var one string
		if json.Unmarshal(cl.Aud, &one) != nil {
			return nil, errors.New("aud is neither a string nor a list")
		}
		t.Audience = []string{one}
	}
	if cl.Exp != 0 {
		t.Expiry = time.Unix(cl.Exp, 0).UTC()
	}
	if cl.Iat != 0 {
		t.IssuedAt = time.Unix(cl.Iat, 0).UTC()
	}
	return t, nil
}

// renewalTime is when a token must be replaced: renewBefore ahead of its expiry, or at two
// thirds of its life when renewBefore is not shorter than the life (as cert-manager does; an
// AccessToken with the default renewBefore of 1h under a policy whose accessTTL is 15m would
// otherwise be due the moment it is minted). Zero for a token that never expires.
func renewalTime(t *mintedToken, renewBefore time.Duration) time.Time {
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
	// SecretFound and HasToken say what the Secret holds; Token is its token decoded, nil
	// when absent or undecodable.
	SecretFound, HasToken bool
	Token                 *mintedToken
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

// tokenOutcome is how a reconcile of an AccessToken ended, for its conditions.
type tokenOutcome struct {
	Err error
	// Waiting says which dependency is not ready.
	Waiting    string
	SecretName string
	Token      *mintedToken
	Renewal    time.Time
}

// accessTokenConditions is the pure mapping from a reconcile's outcome to conditions: Ready
// always; Reconciling or Stalled only when abnormal.
func accessTokenConditions(o tokenOutcome) []metav1.Condition {
	cond := func(t string, s metav1.ConditionStatus, reason, msg string) metav1.Condition {
		return metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg}
	}
	var refused *specError
	switch {
	case errors.As(o.Err, &refused):
		return []metav1.Condition{
			cond(camv1.ConditionReady, metav1.ConditionFalse, refused.Reason, refused.Message),
			cond(camv1.ConditionStalled, metav1.ConditionTrue, refused.Reason, refused.Message)}
	case o.Err != nil:
		// Generic: API errors can be long; the log says more.
		return []metav1.Condition{
			cond(camv1.ConditionReady, metav1.ConditionFalse, "ReconcileFailed", "the last attempt to issue the token failed; retrying"),
			cond(camv1.ConditionReconciling, metav1.ConditionTrue, camv1.ReasonProgressing, "retrying after an error")}
	case o.Waiting != "":
		return []metav1.Condition{
			cond(camv1.ConditionReady, metav1.ConditionFalse, camv1.ReasonDependencyNotReady, o.Waiting),
			cond(camv1.ConditionReconciling, metav1.ConditionTrue, camv1.ReasonDependencyNotReady, o.Waiting)}
	}
	msg := fmt.Sprintf("Secret %s holds token %s signed by key %s", o.SecretName, o.Token.ID, o.Token.KeyID)
	if o.Token.Expiry.IsZero() {
		msg += "; it never expires"
	} else {
		msg += fmt.Sprintf("; it expires at %s and is renewed at %s", o.Token.Expiry.Format(time.RFC3339), o.Renewal.Format(time.RFC3339))
	}
	return []metav1.Condition{cond(camv1.ConditionReady, metav1.ConditionTrue, camv1.ReasonSucceeded, msg)}
}

// setTokenStatus mirrors the token in the Secret into status: public facts only.
func setTokenStatus(st *camv1.AccessTokenStatus, t *mintedToken, renewal time.Time) {
	ts := func(v time.Time) *metav1.Time {
		if v.IsZero() {
			return nil
		}
		m := metav1.NewTime(v)
		return &m
	}
	st.TokenID, st.KeyID = t.ID, t.KeyID
	st.IssuedTime, st.ExpirationTime, st.RenewalTime = ts(t.IssuedAt), ts(t.Expiry), ts(renewal)
}

// patchStatus computes the status from what the run found and did, and writes it in one
// patch, only when it changed: a settled AccessToken costs no write.
func (r *AccessTokenReconciler) patchStatus(ctx context.Context, base *camv1.AccessToken, run *tokenRun, reconcileErr error) error {
	at := run.at
	o := tokenOutcome{Err: reconcileErr, Waiting: run.waiting, SecretName: at.Spec.SecretName, Token: run.current, Renewal: run.renewal()}
	if reconcileErr == nil && run.waiting == "" && run.current != nil {
		setTokenStatus(&at.Status, run.current, o.Renewal)
		at.Status.ObservedGeneration = at.Generation
	}
	applyConditions(&at.Status.Conditions, accessTokenConditions(o), at.Generation, run.now, camv1.ConditionReconciling, camv1.ConditionStalled)
	return patchStatus(ctx, r.Client, at, base)
}
