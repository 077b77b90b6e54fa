package fleet

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/camfleet/camfleet/internal/token"
)

// Decoded is what a token says about itself, read without trusting it, for a person debugging
// a refusal. Header and Claims are nil when their segment cannot be read.
type Decoded struct {
	Header map[string]any `json:"header,omitempty"`
	Claims map[string]any `json:"claims,omitempty"`
	// Token is the registered claims, typed; nil when the token cannot be read.
	Token *token.Unverified `json:"-"`
}

// Decode reads a token's header and claims without verifying anything. It never fails: what
// cannot be read is left out, and the verifier says why.
func Decode(raw string) Decoded {
	var d Decoded
	parts := strings.Split(raw, ".")
	for i, dst := range []*map[string]any{&d.Header, &d.Claims} {
		if i >= len(parts) {
			break
		}
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			continue
		}
		var m map[string]any
		if json.Unmarshal(b, &m) == nil {
			*dst = m
		}
	}
	if u, err := token.ReadUnverified(raw); err == nil {
		d.Token = &u
	}
	return d
}

// Facts are what a refused token says and what the policy it was checked against expects.
type Facts struct {
	Raw     string
	Decoded Decoded
	Now     time.Time
	// Leeway and MaxLifetime are the verifier's settings.
	Leeway, MaxLifetime time.Duration
	// KeyIDs are the kids the policy publishes (its own and its external issuers').
	KeyIDs []string
	// KeyAlgorithm and KeyIssuer describe the key the token's kid names, when it names one.
	KeyAlgorithm, KeyIssuer string
	// Audiences are the aud values the key's issuer is held to.
	Audiences []string
	// Policy is the policy's namespace/name, for messages.
	Policy string
}

// Explain says in a sentence why the strict verifier refused a token with reason, using the
// token's own claims and the policy's expectations: the agent answers a bare 401 and logs only
// the reason code, so this is where a person learns what to fix.
func Explain(reason token.Reason, f Facts) string {
	h, u := f.Decoded.Header, f.Decoded.Token
	str := func(name string) string {
		s, _ := h[name].(string)
		return s
	}
	kid := str("kid")
	switch reason {
	case token.ReasonTooLarge:
		return fmt.Sprintf("the token is %d bytes, over the verifier's cap of %d", len(f.Raw), token.DefaultMaxSize)
	case token.ReasonMalformed:
		return "the token is not a compact JWS: " + malformedDetail(f.Raw, f.Decoded)
	case token.ReasonForbiddenHeader:
		var found []string
		for _, p := range []string{"jku", "x5u", "jwk", "x5c", "crit", "b64", "cty", "enc", "zip", "epk", "apu", "apv", "iv", "tag", "p2s", "p2c"} {
			if _, ok := h[p]; ok {
				found = append(found, p)
			}
		}
		return fmt.Sprintf("the header carries %s, which camfleet never accepts: a token may not choose its own key, URL or processing rules", listOr(found, "a forbidden parameter"))
	case token.ReasonUnsupportedAlgorithm:
		return fmt.Sprintf("the header's alg is %q; camfleet accepts exactly EdDSA, ES256 or RS256 (never none or HMAC)", str("alg"))
	case token.ReasonMissingKeyID:
		return "the header names no key (kid); camfleet's tokens always do"
	case token.ReasonUnknownKey:
		return fmt.Sprintf("key %s is not one of the keys policy %s publishes (%s): it was removed after it retired, revoked by an emergency rotation, or the token is from another policy",
			kid, f.Policy, shortList(f.KeyIDs))
	case token.ReasonAlgorithmMismatch:
		return fmt.Sprintf("the header's alg is %s but key %s is an %s key: the algorithm comes from the key, never from the token", str("alg"), kid, f.KeyAlgorithm)
	case token.ReasonWrongType:
		typ := str("typ")
		if strings.EqualFold(strings.TrimPrefix(strings.ToLower(typ), "application/"), token.TypeRefresh) {
			return "this is a refresh token (typ rt+jwt): agents take access tokens (at+jwt) only; trade it for one at the token service's refresh endpoint"
		}
		return fmt.Sprintf("the header's typ is %q; an agent takes only access tokens, typ %s", typ, token.TypeAccess)
	case token.ReasonBadSignature:
		return fmt.Sprintf("the signature does not verify with key %s: the token was changed after it was signed, or signed by another key under that kid", kid)
	case token.ReasonBadClaim:
		return "a registered claim has the wrong JSON type or range (exp, nbf or iat not a whole non-negative number, iss or sub not a string), or a perms entry is not a permission such as camera:stream:ns/name"
	case token.ReasonWrongIssuer:
		got := ""
		if u != nil {
			got = u.Issuer
		}
		return fmt.Sprintf("iss is %q, but key %s belongs to issuer %q", got, kid, f.KeyIssuer)
	case token.ReasonWrongAudience:
		var got []string
		if u != nil {
			got = u.Audience
		}
		return fmt.Sprintf("aud is %s, which names none of %s", quoted(got), quoted(f.Audiences))
	case token.ReasonMissingExpiry:
		return fmt.Sprintf("the token has no exp, and policy %s does not allow tokens that never expire (spec.tokens.allowNonExpiring)", f.Policy)
	case token.ReasonExpired:
		if u != nil && !u.Expiry.IsZero() {
			return fmt.Sprintf("the token expired at %s, %s ago (leeway %s)", stamp(u.Expiry), Ago(f.Now.Sub(u.Expiry)), f.Leeway)
		}
		return "the token has expired"
	case token.ReasonNotYetValid:
		if u != nil && !u.NotBefore.IsZero() {
			return fmt.Sprintf("the token is valid only from %s, in %s (leeway %s): the issuer's clock or this one is off", stamp(u.NotBefore), Ago(u.NotBefore.Sub(f.Now)), f.Leeway)
		}
		return "the token is not valid yet (nbf)"
	case token.ReasonIssuedInFuture:
		if u != nil && !u.IssuedAt.IsZero() {
			return fmt.Sprintf("the token says it was issued at %s, %s from now (leeway %s): the issuer's clock runs ahead", stamp(u.IssuedAt), Ago(u.IssuedAt.Sub(f.Now)), f.Leeway)
		}
		return "the token says it was issued in the future (iat)"
	case token.ReasonLifetimeTooLong:
		if u != nil && !u.Expiry.IsZero() {
			from := u.IssuedAt
			if from.IsZero() {
				from = f.Now
			}
			return fmt.Sprintf("the token lives %s, longer than the %s policy %s allows (spec.tokens.maxTTL)", Ago(u.Expiry.Sub(from)), f.MaxLifetime, f.Policy)
		}
		return fmt.Sprintf("the token lives longer than the %s policy %s allows", f.MaxLifetime, f.Policy)
	case token.ReasonMissingClaim:
		return "the token names no subject (sub, or the claim an external issuer's subjectClaim names)"
	case token.ReasonRevoked:
		id := ""
		if u != nil {
			id = u.ID
		}
		return fmt.Sprintf("its token ID %s is on policy %s's revocation list (spec.revokedTokenIDs)", id, f.Policy)
	}
	return "the verifier refused it with reason " + string(reason)
}

// malformedDetail names the first structural fault a person can fix.
func malformedDetail(raw string, d Decoded) string {
	switch {
	case strings.HasPrefix(strings.ToLower(raw), "bearer "):
		return `it starts with "Bearer "; pass the token alone`
	case strings.TrimSpace(raw) != raw || strings.ContainsAny(raw, " \t\r\n"):
		return "it contains whitespace or a line break"
	case strings.Count(raw, ".") == 4:
		return "it has five segments, an encrypted token (JWE); camfleet's tokens are signed (JWS, three segments)"
	case strings.HasPrefix(raw, "{"):
		return "it is the JWS JSON serialization; camfleet takes the compact form only"
	case strings.Count(raw, ".") != 2:
		return fmt.Sprintf("it has %d segments separated by dots, not 3", strings.Count(raw, ".")+1)
	case strings.ContainsAny(raw, "=+/"):
		return "a segment uses base64 padding (=) or the standard alphabet (+ /); JWS uses unpadded base64url"
	case d.Header == nil:
		return "its header is not base64url-encoded JSON"
	case d.Claims == nil:
		return "its claims are not base64url-encoded JSON"
	}
	return "its header or claims are not canonical: duplicate names, invalid UTF-8, non-zero padding bits or trailing data"
}

func listOr(items []string, none string) string {
	if len(items) == 0 {
		return none
	}
	return strings.Join(items, ", ")
}

func shortList(kids []string) string {
	if len(kids) == 0 {
		return "none"
	}
	out := make([]string, len(kids))
	for i, k := range kids {
		out[i] = ShortKeyID(k)
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

func quoted(items []string) string {
	if len(items) == 0 {
		return "empty"
	}
	out := make([]string, len(items))
	for i, s := range items {
		out[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(out, ", ") + "]"
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
