// Package token signs and strictly verifies camfleet's JSON Web Tokens.
//
// One verifier serves the agent, the token service and the tests, so a token
// that one component accepts is accepted by all of them and a token one refuses
// is refused everywhere. The rules follow RFC 8725 (JWT best current practice)
// and RFC 9068 (access token profile): compact JWS only, canonical base64url,
// a size cap, a required and known "kid", the algorithm taken from the key, an
// allowlist of EdDSA, ES256 and RS256, and no header that would let a token
// choose its own key ("jku", "x5u", "jwk", "x5c") or change how it is
// processed ("crit", "b64").
//
// Keys come from a JWKS (ParseJWKS) and are bound to the issuer that publishes
// them (KeySet.BindIssuer), so a token verifies only with a key of the issuer it
// names. A rejection carries a Reason for metrics and logs; callers answer the
// client with a bare 401 and never echo the reason, the token or key material.
package token
