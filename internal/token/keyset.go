package token

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

const (
	// maxJWKSSize matches the largest ConfigMap Kubernetes stores.
	maxJWKSSize = 1 << 20
	// maxKeys bounds a key set; a policy publishes a handful (pending,
	// active, retiring) and an external issuer rarely more than a few.
	maxKeys = 100
	// maxKeyIDLength bounds a kid; ours are 43-byte RFC 7638 thumbprints.
	maxKeyIDLength = 256
)

// PublicKey is one verification key.
type PublicKey struct {
	// KeyID is the "kid" a token names to select this key.
	KeyID string
	// Algorithm is the only algorithm this key verifies; the token's "alg"
	// must equal it.
	Algorithm Algorithm
	// Key is an ed25519.PublicKey, *ecdsa.PublicKey (P-256) or *rsa.PublicKey.
	Key crypto.PublicKey
	// Issuer is the "iss" a token verified by this key must carry. A key
	// without an issuer cannot verify tokens; bind one with KeySet.Bind.
	Issuer string
	// SubjectClaim names the claim the subject is taken from for this
	// issuer's tokens; empty means "sub". External issuers may put the user
	// name elsewhere (for example "email").
	SubjectClaim string
	// Types, when set, replaces the verifier's expected header "typ" for
	// this issuer's tokens. External issuers often write "JWT" or no typ at
	// all; the empty string in the list accepts a token without typ. Leave
	// it unset for our own issuer, so that refresh and access tokens never
	// cross.
	Types []string
	// Audiences, when set, replaces the verifier's accepted "aud" values for
	// this issuer's tokens, so an external issuer's audience never admits our
	// own tokens, nor ours its.
	Audiences []string
}

// verifyKey is a validated PublicKey with its concrete key type resolved once,
// so the hot path needs no type switch on an interface.
type verifyKey struct {
	PublicKey
	ed  ed25519.PublicKey
	ec  *ecdsa.PublicKey
	rsa *rsa.PublicKey
}

// KeySet is an immutable set of verification keys indexed by key ID. Replace
// it as a whole (Verifier.SetKeys) when the published keys change.
type KeySet struct {
	keys  map[string]*verifyKey
	order []string
}

// Binding ties keys to the issuer whose tokens they verify.
type Binding struct {
	// Issuer is the exact "iss" the keys' tokens carry.
	Issuer string
	// SubjectClaim is the claim holding the subject; empty means "sub".
	SubjectClaim string
	// Types overrides the verifier's expected "typ" for these keys; see
	// PublicKey.Types.
	Types []string
	// Audiences overrides the verifier's accepted "aud" values for these keys;
	// see PublicKey.Audiences.
	Audiences []string
}

// NewKeySet validates keys and indexes them by key ID. It refuses a key with an
// algorithm outside the allowlist, an algorithm that does not fit the key type,
// RSA under 2048 bits, an EC key not on P-256, and duplicate key IDs.
func NewKeySet(keys ...PublicKey) (*KeySet, error) {
	if len(keys) == 0 {
		return nil, errors.New("key set has no keys")
	}
	if len(keys) > maxKeys {
		return nil, fmt.Errorf("key set has %d keys, more than %d", len(keys), maxKeys)
	}
	s := &KeySet{keys: make(map[string]*verifyKey, len(keys)), order: make([]string, 0, len(keys))}
	for i, pk := range keys {
		vk, err := newVerifyKey(pk)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		if _, dup := s.keys[pk.KeyID]; dup {
			return nil, fmt.Errorf("key %d: duplicate kid %q", i, pk.KeyID)
		}
		s.keys[pk.KeyID] = vk
		s.order = append(s.order, pk.KeyID)
	}
	return s, nil
}

func newVerifyKey(pk PublicKey) (*verifyKey, error) {
	if pk.KeyID == "" {
		return nil, errors.New("no kid")
	}
	if len(pk.KeyID) > maxKeyIDLength {
		return nil, fmt.Errorf("kid longer than %d bytes", maxKeyIDLength)
	}
	if !pk.Algorithm.Valid() {
		return nil, fmt.Errorf("kid %q: algorithm %q is not allowed (EdDSA, ES256, RS256)", pk.KeyID, pk.Algorithm)
	}
	vk := &verifyKey{PublicKey: pk}
	switch pk.Algorithm {
	case EdDSA:
		k, ok := pk.Key.(ed25519.PublicKey)
		if !ok || len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("kid %q: EdDSA needs an Ed25519 public key, got %T", pk.KeyID, pk.Key)
		}
		vk.ed = k
	case ES256:
		k, ok := pk.Key.(*ecdsa.PublicKey)
		if !ok || k == nil || k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("kid %q: ES256 needs a P-256 ECDSA public key, got %T", pk.KeyID, pk.Key)
		}
		// ECDH refuses points that are not on the curve.
		if _, err := k.ECDH(); err != nil {
			return nil, fmt.Errorf("kid %q: invalid P-256 public key: %w", pk.KeyID, err)
		}
		vk.ec = k
	case RS256:
		k, ok := pk.Key.(*rsa.PublicKey)
		if !ok || k == nil || k.N == nil {
			return nil, fmt.Errorf("kid %q: RS256 needs an RSA public key, got %T", pk.KeyID, pk.Key)
		}
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("kid %q: RSA key of %d bits, need at least %d", pk.KeyID, k.N.BitLen(), minRSABits)
		}
		if k.E < 3 || k.E%2 == 0 {
			return nil, fmt.Errorf("kid %q: RSA public exponent %d is not an odd number of at least 3", pk.KeyID, k.E)
		}
		vk.rsa = k
	}
	return vk, nil
}

// Lookup returns the key with the given key ID.
func (s *KeySet) Lookup(kid string) (PublicKey, bool) {
	if s == nil {
		return PublicKey{}, false
	}
	k, ok := s.keys[kid]
	if !ok {
		return PublicKey{}, false
	}
	return k.PublicKey, true
}

// Len returns the number of keys.
func (s *KeySet) Len() int {
	if s == nil {
		return 0
	}
	return len(s.order)
}

// Keys returns the keys in the order they were given or published.
func (s *KeySet) Keys() []PublicKey {
	if s == nil {
		return nil
	}
	out := make([]PublicKey, len(s.order))
	for i, kid := range s.order {
		out[i] = s.keys[kid].PublicKey
	}
	return out
}

// Bind returns a copy of s with every key bound to b's issuer, so that a
// token verifies with these keys only if its "iss" is that issuer.
func (s *KeySet) Bind(b Binding) (*KeySet, error) {
	if b.Issuer == "" {
		return nil, errors.New("bind key set: issuer is empty")
	}
	switch b.SubjectClaim {
	case "iss", "aud", "exp", "nbf", "iat", "jti", "perms":
		return nil, fmt.Errorf("bind key set to %q: subject claim %q is a registered claim", b.Issuer, b.SubjectClaim)
	}
	keys := s.Keys()
	for i := range keys {
		keys[i].Issuer = b.Issuer
		keys[i].SubjectClaim = b.SubjectClaim
		keys[i].Types = append([]string(nil), b.Types...)
		keys[i].Audiences = append([]string(nil), b.Audiences...)
	}
	out, err := NewKeySet(keys...)
	if err != nil {
		return nil, fmt.Errorf("bind key set to %q: %w", b.Issuer, err)
	}
	return out, nil
}

// BindIssuer is Bind with the subject taken from "sub".
func (s *KeySet) BindIssuer(issuer string) (*KeySet, error) {
	return s.Bind(Binding{Issuer: issuer})
}

// MergeKeySets combines key sets from several sources (our JWKS and trusted
// external issuers), each already bound to its issuer. A key ID present in two
// sets is refused: a token's kid must select exactly one key.
func MergeKeySets(sets ...*KeySet) (*KeySet, error) {
	var keys []PublicKey
	for _, s := range sets {
		keys = append(keys, s.Keys()...)
	}
	out, err := NewKeySet(keys...)
	if err != nil {
		return nil, fmt.Errorf("merge key sets: %w", err)
	}
	return out, nil
}

// privateMembers are JWK members that carry private or symmetric key
// material (RFC 7518 section 6). A published set must contain none of them.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// ParseJWKS parses a JSON Web Key Set (RFC 7517) as the controller publishes it
// and keeps stdlib public keys indexed by kid. Every key needs a kid and an
// allowed alg that fits its type; "use", if present, must be "sig". A key with
// private members, RSA under 2048 bits or a duplicate kid fails the whole set:
// a set that is wrong in part is not trusted at all. The keys are not bound to
// an issuer yet: call Bind or BindIssuer.
func ParseJWKS(data []byte) (*KeySet, error) {
	if len(data) > maxJWKSSize {
		return nil, fmt.Errorf("parse JWKS: larger than %d bytes", maxJWKSSize)
	}
	// First look at the raw members: jwx would quietly treat a key with
	// private members as a private key, and a set must not carry them at all.
	var raw struct {
		Keys []map[string]json.RawMessage `json:"keys"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("parse JWKS: %w", err)
	}
	if raw.Keys == nil {
		return nil, errors.New(`parse JWKS: no "keys" array`)
	}
	if len(raw.Keys) > maxKeys {
		return nil, fmt.Errorf("parse JWKS: %d keys, more than %d", len(raw.Keys), maxKeys)
	}
	for i, members := range raw.Keys {
		for _, name := range privateMembers {
			if _, ok := members[name]; ok {
				return nil, fmt.Errorf("parse JWKS: key %d has private member %q", i, name)
			}
		}
	}

	set, err := jwk.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("parse JWKS: %w", err)
	}
	keys := make([]PublicKey, 0, set.Len())
	for i := range set.Len() {
		k, _ := set.Key(i)
		pk, err := publicKeyFromJWK(k)
		if err != nil {
			return nil, fmt.Errorf("parse JWKS: key %d: %w", i, err)
		}
		keys = append(keys, pk)
	}
	ks, err := NewKeySet(keys...)
	if err != nil {
		return nil, fmt.Errorf("parse JWKS: %w", err)
	}
	return ks, nil
}

func publicKeyFromJWK(k jwk.Key) (PublicKey, error) {
	if private, err := jwk.IsPrivateKey(k); err != nil || private {
		return PublicKey{}, errors.New("not an asymmetric public key")
	}
	kid, ok := k.KeyID()
	if !ok || kid == "" {
		return PublicKey{}, errors.New("no kid")
	}
	alg, ok := k.Algorithm()
	if !ok {
		return PublicKey{}, fmt.Errorf("kid %q: no alg", kid)
	}
	if use, ok := k.KeyUsage(); ok && use != "sig" {
		return PublicKey{}, fmt.Errorf("kid %q: use is %q, not \"sig\"", kid, use)
	}
	if ops, ok := k.KeyOps(); ok {
		verify := false
		for _, op := range ops {
			verify = verify || op == jwk.KeyOpVerify
		}
		if !verify {
			return PublicKey{}, fmt.Errorf("kid %q: key_ops does not include \"verify\"", kid)
		}
	}
	var rawKey any
	if err := jwk.Export(k, &rawKey); err != nil {
		return PublicKey{}, fmt.Errorf("kid %q: %w", kid, err)
	}
	a := Algorithm(alg.String())
	if !a.Valid() {
		return PublicKey{}, fmt.Errorf("kid %q: algorithm %q is not allowed (EdDSA, ES256, RS256)", kid, a)
	}
	// newVerifyKey (through NewKeySet) checks that the key type fits alg.
	return PublicKey{KeyID: kid, Algorithm: a, Key: rawKey}, nil
}

// MarshalJWKS renders the set as a JWKS with public members only, each key
// with kid, alg and "use": "sig", in the set's order so that the same keys
// always produce the same bytes (a controller can compare before writing).
func (s *KeySet) MarshalJWKS() ([]byte, error) {
	set := jwk.NewSet()
	for _, pk := range s.Keys() {
		k, err := jwk.Import(pk.Key)
		if err != nil {
			return nil, fmt.Errorf("marshal JWKS: kid %q: %w", pk.KeyID, err)
		}
		alg, ok := jwa.LookupSignatureAlgorithm(string(pk.Algorithm))
		if !ok {
			return nil, fmt.Errorf("marshal JWKS: kid %q: unknown algorithm", pk.KeyID)
		}
		for name, v := range map[string]any{jwk.KeyIDKey: pk.KeyID, jwk.AlgorithmKey: alg, jwk.KeyUsageKey: "sig"} {
			if err := k.Set(name, v); err != nil {
				return nil, fmt.Errorf("marshal JWKS: kid %q: set %s: %w", pk.KeyID, name, err)
			}
		}
		if err := set.AddKey(k); err != nil {
			return nil, fmt.Errorf("marshal JWKS: kid %q: %w", pk.KeyID, err)
		}
	}
	out, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("marshal JWKS: %w", err)
	}
	return out, nil
}

// Thumbprint returns the RFC 7638 SHA-256 thumbprint of a public key,
// base64url without padding: the kid camfleet gives its keys.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	k, err := jwk.Import(pub)
	if err != nil {
		return "", fmt.Errorf("thumbprint: %w", err)
	}
	if private, err := jwk.IsPrivateKey(k); err != nil || private {
		return "", errors.New("thumbprint: not an asymmetric public key")
	}
	sum, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// sameKey reports whether two validated keys verify exactly the same tokens:
// same kid, algorithm, issuer binding and key material.
func (k *verifyKey) sameKey(o *verifyKey) bool {
	if k == o {
		return true
	}
	if k.KeyID != o.KeyID || k.Algorithm != o.Algorithm || k.Issuer != o.Issuer || k.SubjectClaim != o.SubjectClaim ||
		!slices.Equal(k.Types, o.Types) {
		return false
	}
	switch k.Algorithm {
	case EdDSA:
		return k.ed.Equal(o.ed)
	case ES256:
		return k.ec.Equal(o.ec)
	case RS256:
		return k.rsa.N.Cmp(o.rsa.N) == 0 && k.rsa.E == o.rsa.E
	}
	return false
}
