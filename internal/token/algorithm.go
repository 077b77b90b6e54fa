package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
)

// Algorithm is a JWS signature algorithm ("alg"). Only asymmetric algorithms
// are allowed: an agent must never hold material that can sign, which rules
// out HMAC, and "none" is never a signature.
type Algorithm string

// The allowed algorithms.
const (
	// EdDSA is Ed25519 (RFC 8037), the default for new keys: small, fast to
	// verify and without the nonce pitfalls of ECDSA.
	EdDSA Algorithm = "EdDSA"
	// ES256 is ECDSA on P-256 with SHA-256, signatures as raw r||s (64 bytes).
	ES256 Algorithm = "ES256"
	// RS256 is RSASSA-PKCS1-v1_5 with SHA-256, for external issuers that
	// only offer RSA (keys of at least 2048 bits).
	RS256 Algorithm = "RS256"
)

// Token types for the header "typ". Access tokens use the RFC 9068 type; a
// refresh token has its own so that it can never pass as an access token.
const (
	TypeAccess  = "at+jwt"
	TypeRefresh = "rt+jwt"
)

// minRSABits is the smallest RSA modulus accepted, per NIST SP 800-57.
const minRSABits = 2048

// AlgorithmOf is the one algorithm a public key may verify (and its private half sign): EdDSA
// for Ed25519, ES256 for P-256, RS256 for RSA of at least 2048 bits. Other keys are refused.
func AlgorithmOf(pub crypto.PublicKey) (Algorithm, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return EdDSA, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", fmt.Errorf("ECDSA key on curve %s, want P-256", k.Curve.Params().Name)
		}
		return ES256, nil
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return "", fmt.Errorf("RSA key of %d bits, under the minimum of %d", k.N.BitLen(), minRSABits)
		}
		return RS256, nil
	default:
		return "", fmt.Errorf("unsupported key type %T", pub)
	}
}

// Valid reports whether a is one of the allowed algorithms.
func (a Algorithm) Valid() bool {
	switch a {
	case EdDSA, ES256, RS256:
		return true
	}
	return false
}

// algorithmFromHeader maps the header's "alg" bytes to an allowed algorithm.
// Matching is exact: "none", "None", "HS256", "es256" are all refused.
func algorithmFromHeader(b []byte) (Algorithm, bool) {
	switch string(b) {
	case string(EdDSA):
		return EdDSA, true
	case string(ES256):
		return ES256, true
	case string(RS256):
		return RS256, true
	}
	return "", false
}
