package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
)

// SigningKey is a private key with its key ID and algorithm. Only the
// controller's token service holds these; agents never do.
type SigningKey struct {
	// KeyID is written as the header "kid".
	KeyID string
	// Algorithm is written as the header "alg" and must fit Signer.
	Algorithm Algorithm
	// Signer is an ed25519.PrivateKey, *ecdsa.PrivateKey (P-256) or
	// *rsa.PrivateKey, or any crypto.Signer over such a key (a KMS, an HSM).
	Signer crypto.Signer
}

// GenerateSigningKey creates a new key for alg, with the RFC 7638 thumbprint
// of its public half as the key ID.
func GenerateSigningKey(alg Algorithm) (SigningKey, error) {
	var signer crypto.Signer
	var err error
	switch alg {
	case EdDSA:
		_, signer, err = ed25519.GenerateKey(rand.Reader)
	case ES256:
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RS256:
		signer, err = rsa.GenerateKey(rand.Reader, 3072)
	default:
		return SigningKey{}, fmt.Errorf("generate signing key: algorithm %q is not allowed", alg)
	}
	if err != nil {
		return SigningKey{}, fmt.Errorf("generate %s signing key: %w", alg, err)
	}
	kid, err := Thumbprint(signer.Public())
	if err != nil {
		return SigningKey{}, fmt.Errorf("generate %s signing key: %w", alg, err)
	}
	return SigningKey{KeyID: kid, Algorithm: alg, Signer: signer}, nil
}

// PublicKey returns the verification half, not yet bound to an issuer.
func (k SigningKey) PublicKey() PublicKey {
	return PublicKey{KeyID: k.KeyID, Algorithm: k.Algorithm, Key: k.Signer.Public()}
}

func (k SigningKey) check() error {
	if k.KeyID == "" {
		return errors.New("signing key has no kid")
	}
	if k.Signer == nil {
		return errors.New("signing key has no signer")
	}
	// The public half must pass the same checks a verifier applies, so
	// that we never sign with a key nobody could accept.
	if _, err := newVerifyKey(k.PublicKey()); err != nil {
		return fmt.Errorf("signing key: %w", err)
	}
	return nil
}

// wireHeader fixes the header's members and order.
type wireHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

// Sign creates a compact JWS with header alg, kid and typ over the claims.
func Sign(c Claims, typ string, signer SigningKey) (string, error) {
	if typ == "" {
		return "", errors.New("sign token: no type")
	}
	if err := signer.check(); err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	if err := c.validate(); err != nil {
		return "", fmt.Errorf("sign token: claims: %w", err)
	}
	hdr, err := json.Marshal(wireHeader{Alg: string(signer.Algorithm), Kid: signer.KeyID, Typ: typ})
	if err != nil {
		return "", fmt.Errorf("sign token: header: %w", err)
	}
	payload, err := c.marshal()
	if err != nil {
		return "", fmt.Errorf("sign token: claims: %w", err)
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(hdr) + "." + enc.EncodeToString(payload)
	sig, err := signInput(signer, []byte(input))
	if err != nil {
		return "", fmt.Errorf("sign token with kid %q: %w", signer.KeyID, err)
	}
	return input + "." + enc.EncodeToString(sig), nil
}

func signInput(k SigningKey, input []byte) ([]byte, error) {
	switch k.Algorithm {
	case EdDSA:
		return k.Signer.Sign(rand.Reader, input, crypto.Hash(0))
	case ES256:
		digest := sha256.Sum256(input)
		der, err := k.Signer.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			return nil, err
		}
		// crypto.Signer gives ASN.1 DER; JWS wants fixed-size r||s.
		var rs struct{ R, S *big.Int }
		rest, err := asn1.Unmarshal(der, &rs)
		if err != nil || len(rest) != 0 || rs.R == nil || rs.S == nil ||
			rs.R.Sign() <= 0 || rs.S.Sign() <= 0 || rs.R.BitLen() > 256 || rs.S.BitLen() > 256 {
			return nil, errors.New("ECDSA signer returned a malformed signature")
		}
		sig := make([]byte, 64)
		rs.R.FillBytes(sig[:32])
		rs.S.FillBytes(sig[32:])
		return sig, nil
	case RS256:
		digest := sha256.Sum256(input)
		return k.Signer.Sign(rand.Reader, digest[:], crypto.SHA256)
	}
	return nil, fmt.Errorf("algorithm %q is not allowed", k.Algorithm)
}

// NewID returns a random token ID for "jti": 128 bits, base64url.
func NewID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("new token ID: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
