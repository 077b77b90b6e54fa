// Package keys is the signing-key lifecycle of a TokenPolicy: generating keys, storing them in
// a Secret, publishing their public halves as a JWKS, and the pure decisions that move a key
// from pending to active to retiring to removed.
package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"io"
	"time"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/token"
)

// MinRSABits is the smallest RSA modulus camfleet signs with or accepts from a Secret.
const MinRSABits = 2048

// DefaultRSABits is the RSA modulus size when a policy does not name one.
const DefaultRSABits = 3072

// Key is one signing key and where it is in its lifecycle. Times are whole seconds, as they
// are stored.
type Key struct {
	// ID is the RFC 7638 thumbprint of the public key (SHA-256, base64url).
	ID        string
	Algorithm camv1.SigningAlgorithm
	State     camv1.KeyState
	// Created is when the key was generated.
	Created time.Time
	// Published is when a JWKS holding the key was first written; zero until then. A key
	// signs only once it has been published for the policy's publishAhead.
	Published time.Time
	// Activates is when the key started signing (Active, Retiring) or is planned to (Pending).
	Activates time.Time
	// Retires is when the key stopped signing; zero unless Retiring.
	Retires time.Time
	// Requested marks a pending key made for a camfleet.io/rotate request without revoke: it
	// signs as soon as every agent holds it, without waiting for the active key's period.
	Requested bool

	signer crypto.Signer
}

// Signer is the private key. It never leaves the controller.
func (k *Key) Signer() crypto.Signer { return k.signer }

// Public is the public half of the key.
func (k *Key) Public() crypto.PublicKey { return k.signer.Public() }

// Generate makes a key for alg; rsaBits applies to RS256 (0 means DefaultRSABits).
func Generate(alg camv1.SigningAlgorithm, rsaBits int, random io.Reader, now time.Time) (*Key, error) {
	var signer crypto.Signer
	var err error
	switch alg {
	case camv1.AlgorithmEdDSA:
		_, signer, err = ed25519.GenerateKey(random)
	case camv1.AlgorithmES256:
		signer, err = ecdsa.GenerateKey(elliptic.P256(), random)
	case camv1.AlgorithmRS256:
		if rsaBits == 0 {
			rsaBits = DefaultRSABits
		}
		if rsaBits < MinRSABits {
			return nil, fmt.Errorf("RSA keys need at least %d bits, asked for %d", MinRSABits, rsaBits)
		}
		signer, err = rsa.GenerateKey(random, rsaBits)
	default:
		return nil, fmt.Errorf("unsupported signing algorithm %q", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", alg, err)
	}
	kid, err := Thumbprint(signer.Public())
	if err != nil {
		return nil, err
	}
	return &Key{ID: kid, Algorithm: alg, State: camv1.KeyPending, Created: now.Truncate(time.Second), signer: signer}, nil
}

// Thumbprint is the RFC 7638 JWK thumbprint of a public key (SHA-256, base64url): the kid
// camfleet publishes. It is the verifier's own function, so signer and verifier agree.
func Thumbprint(pub crypto.PublicKey) (string, error) { return token.Thumbprint(pub) }

// algorithmOf says which signing algorithm a private key can serve, and checks its strength,
// by the verifier's own rule.
func algorithmOf(signer crypto.Signer) (camv1.SigningAlgorithm, error) {
	alg, err := token.AlgorithmOf(signer.Public())
	return camv1.SigningAlgorithm(alg), err
}
