package token

import (
	"errors"
	"slices"
)

// Reason says why a token was rejected. It is meant for metrics labels and logs
// only: a client gets a bare 401, because telling an attacker which check
// failed helps them build the next attempt.
type Reason string

// The reasons Verify reports. The set is small and fixed so that it can be a
// metrics label without unbounded cardinality.
const (
	// ReasonMalformed: not a compact JWS with canonical base64url segments and
	// a JSON object header and payload (includes JWE, JSON serialization,
	// padding, the standard alphabet, duplicate JSON keys, invalid UTF-8).
	ReasonMalformed Reason = "malformed"
	// ReasonTooLarge: longer than the configured size cap.
	ReasonTooLarge Reason = "too_large"
	// ReasonForbiddenHeader: a header parameter we never accept (jku, x5u,
	// jwk, x5c, crit, b64, or a JWE or nesting parameter).
	ReasonForbiddenHeader Reason = "forbidden_header"
	// ReasonUnsupportedAlgorithm: "alg" is not EdDSA, ES256 or RS256
	// (none, HMAC, anything else).
	ReasonUnsupportedAlgorithm Reason = "unsupported_algorithm"
	// ReasonAlgorithmMismatch: "alg" is allowed but not the algorithm of the
	// key named by "kid".
	ReasonAlgorithmMismatch Reason = "algorithm_mismatch"
	// ReasonMissingKeyID: no "kid", or an empty one.
	ReasonMissingKeyID Reason = "missing_kid"
	// ReasonUnknownKey: "kid" names no key in the published set.
	ReasonUnknownKey Reason = "unknown_kid"
	// ReasonWrongType: header "typ" is missing or not the expected type (for
	// example a refresh token presented as an access token).
	ReasonWrongType Reason = "wrong_type"
	// ReasonBadSignature: the signature does not verify with the key.
	ReasonBadSignature Reason = "bad_signature"
	// ReasonBadClaim: a registered claim has the wrong JSON type or an
	// out-of-range value (a string "exp", "exp": 1e300, "iss": null, a
	// permission that does not parse).
	ReasonBadClaim Reason = "bad_claim"
	// ReasonMissingExpiry: no "exp" and the policy does not allow
	// non-expiring tokens.
	ReasonMissingExpiry Reason = "missing_exp"
	// ReasonMissingClaim: a required claim other than exp, iss and aud is
	// absent or empty (the subject).
	ReasonMissingClaim Reason = "missing_claim"
	// ReasonExpired: "exp" is in the past by more than the leeway.
	ReasonExpired Reason = "expired"
	// ReasonNotYetValid: "nbf" is in the future by more than the leeway.
	ReasonNotYetValid Reason = "not_yet_valid"
	// ReasonIssuedInFuture: "iat" is in the future by more than the leeway.
	ReasonIssuedInFuture Reason = "issued_in_future"
	// ReasonLifetimeTooLong: "exp" minus "iat" is above the policy's maximum.
	ReasonLifetimeTooLong Reason = "lifetime_too_long"
	// ReasonWrongIssuer: "iss" is missing or is not the issuer the key
	// belongs to.
	ReasonWrongIssuer Reason = "wrong_issuer"
	// ReasonWrongAudience: "aud" is missing, empty or names none of ours.
	ReasonWrongAudience Reason = "wrong_audience"
	// ReasonRevoked: "jti" is on the revocation list.
	ReasonRevoked Reason = "revoked"
)

// Error is a token rejection. Its message names the reason only: it never
// contains the token, a claim value or key material, so it is safe to log.
type Error struct {
	reason Reason
}

// Reason returns why the token was rejected.
func (e *Error) Reason() Reason { return e.reason }

func (e *Error) Error() string { return "token rejected: " + string(e.reason) }

// Rejections are preallocated, one per reason, so that refusing a token costs
// no allocation: a flood of garbage tokens must stay cheap.
var rejections = func() map[Reason]*Error {
	m := make(map[Reason]*Error)
	for _, r := range []Reason{
		ReasonMalformed, ReasonTooLarge, ReasonForbiddenHeader, ReasonUnsupportedAlgorithm,
		ReasonAlgorithmMismatch, ReasonMissingKeyID, ReasonUnknownKey, ReasonWrongType,
		ReasonBadSignature, ReasonBadClaim, ReasonMissingExpiry, ReasonMissingClaim,
		ReasonExpired, ReasonNotYetValid, ReasonIssuedInFuture, ReasonLifetimeTooLong,
		ReasonWrongIssuer, ReasonWrongAudience, ReasonRevoked,
	} {
		m[r] = &Error{reason: r}
	}
	return m
}()

// Reasons lists every reason Verify can report, for pre-registering metrics
// label values.
func Reasons() []Reason {
	out := make([]Reason, 0, len(rejections))
	for r := range rejections {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

var (
	errMalformed            = rejections[ReasonMalformed]
	errTooLarge             = rejections[ReasonTooLarge]
	errForbiddenHeader      = rejections[ReasonForbiddenHeader]
	errUnsupportedAlgorithm = rejections[ReasonUnsupportedAlgorithm]
	errAlgorithmMismatch    = rejections[ReasonAlgorithmMismatch]
	errMissingKeyID         = rejections[ReasonMissingKeyID]
	errUnknownKey           = rejections[ReasonUnknownKey]
	errWrongType            = rejections[ReasonWrongType]
	errBadSignature         = rejections[ReasonBadSignature]
	errBadClaim             = rejections[ReasonBadClaim]
	errMissingExpiry        = rejections[ReasonMissingExpiry]
	errMissingClaim         = rejections[ReasonMissingClaim]
	errExpired              = rejections[ReasonExpired]
	errNotYetValid          = rejections[ReasonNotYetValid]
	errIssuedInFuture       = rejections[ReasonIssuedInFuture]
	errLifetimeTooLong      = rejections[ReasonLifetimeTooLong]
	errWrongIssuer          = rejections[ReasonWrongIssuer]
	errWrongAudience        = rejections[ReasonWrongAudience]
	errRevoked              = rejections[ReasonRevoked]
)

// ReasonOf returns the reason of a rejection from Verify, or "" when err is nil
// or not a rejection.
func ReasonOf(err error) Reason {
	// The direct assertion covers Verify's own errors without the
	// allocation errors.As costs; errors.As covers wrapped ones.
	if e, ok := err.(*Error); ok { //nolint:errorlint // fast path, errors.As follows
		return e.reason
	}
	var e *Error
	if errors.As(err, &e) {
		return e.reason
	}
	return ""
}
