package token

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"

	"github.com/camfleet/camfleet/internal/permission"
)

const (
	// DefaultMaxSize is the default cap on a token's length. Our tokens are
	// a few hundred bytes; 8 KiB leaves room for long permission lists while
	// keeping an oversized token from costing any work.
	DefaultMaxSize = 8 << 10
	// MaxLeeway caps the configured clock-skew allowance: a large leeway
	// quietly extends every token's life.
	MaxLeeway = 5 * time.Minute
	// maxSignatureSize fits an RSA-8192 signature.
	maxSignatureSize = 1024
)

// Config configures a Verifier.
type Config struct {
	// Keys are the verification keys, each bound to its issuer. Required.
	// Replace them later with SetKeys.
	Keys *KeySet
	// Audiences accepted in "aud": a token must name at least one. Required.
	Audiences []string
	// Type is the expected header "typ", TypeAccess or TypeRefresh. Required.
	// "application/" + Type is accepted too, and the comparison ignores case
	// (RFC 8725 section 3.11).
	Type string
	// Leeway is the clock-skew allowance for exp, nbf and iat, at most
	// MaxLeeway.
	Leeway time.Duration
	// MaxLifetime is the longest accepted exp - iat (or exp - now when the
	// token has no iat). Required.
	MaxLifetime time.Duration
	// AllowNonExpiring accepts tokens without "exp", for policies with an
	// access TTL of 0. Tokens that do have "exp" are still fully checked.
	AllowNonExpiring bool
	// Revoked is the initial revocation list; replace it with
	// SetRevocations. Nil revokes nothing.
	Revoked *Revocations
	// MaxSize caps the token length in bytes; zero means DefaultMaxSize.
	MaxSize int
	// Clock gives the current time; nil means the real clock.
	Clock clock.PassiveClock
}

// Verifier checks tokens. It is safe for concurrent use; keys and revocations
// can be swapped while it runs.
type Verifier struct {
	audiences        []string
	typ              []byte
	appTyp           []byte
	leeway           time.Duration
	leewaySeconds    int64
	maxLifetime      int64 // seconds
	allowNonExpiring bool
	maxSize          int
	clock            clock.PassiveClock

	keys    atomic.Pointer[KeySet]
	revoked atomic.Pointer[Revocations]
}

// Verified is what a valid token establishes. Perms and Grants are shared with
// the verifier's cache: read them, never modify them.
type Verified struct {
	// Subject is "sub", or the issuer's configured subject claim.
	Subject string
	// Issuer is "iss", equal to the issuer the key is bound to.
	Issuer string
	// ID is "jti"; empty if the token has none.
	ID string
	// KeyID is the "kid" of the key that verified the token.
	KeyID string
	// Expiry is "exp"; the zero time for a non-expiring token.
	Expiry time.Time
	// IssuedAt is "iat"; the zero time if absent.
	IssuedAt time.Time
	// Perms is the "perms" claim as written.
	Perms []string
	// Grants is Perms compiled, ready for per-route checks.
	Grants permission.Set
}

// NewVerifier checks the configuration and returns a verifier.
func NewVerifier(cfg Config) (*Verifier, error) {
	var errs []error
	if len(cfg.Audiences) == 0 {
		errs = append(errs, errors.New("no audiences"))
	}
	for _, a := range cfg.Audiences {
		if a == "" {
			errs = append(errs, errors.New("an empty audience"))
		}
	}
	if cfg.Type == "" {
		errs = append(errs, errors.New("no token type"))
	}
	if cfg.Leeway < 0 || cfg.Leeway > MaxLeeway {
		errs = append(errs, fmt.Errorf("leeway %s outside [0, %s]", cfg.Leeway, MaxLeeway))
	}
	if cfg.MaxLifetime < time.Second {
		errs = append(errs, fmt.Errorf("max lifetime %s below one second", cfg.MaxLifetime))
	}
	if cfg.MaxSize < 0 {
		errs = append(errs, fmt.Errorf("negative max size %d", cfg.MaxSize))
	}
	if err := checkKeys(cfg.Keys); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("token verifier config: %w", errors.Join(errs...))
	}
	v := &Verifier{
		audiences:        append([]string(nil), cfg.Audiences...),
		typ:              []byte(cfg.Type),
		appTyp:           []byte("application/" + cfg.Type),
		leeway:           cfg.Leeway,
		leewaySeconds:    int64((cfg.Leeway + time.Second - 1) / time.Second),
		maxLifetime:      int64(cfg.MaxLifetime / time.Second),
		allowNonExpiring: cfg.AllowNonExpiring,
		maxSize:          cfg.MaxSize,
		clock:            cfg.Clock,
	}
	if v.maxSize == 0 {
		v.maxSize = DefaultMaxSize
	}
	if v.clock == nil {
		v.clock = clock.RealClock{}
	}
	v.keys.Store(cfg.Keys)
	v.revoked.Store(cfg.Revoked)
	return v, nil
}

func checkKeys(ks *KeySet) error {
	if ks.Len() == 0 {
		return errors.New("no keys")
	}
	for _, kid := range ks.order {
		if ks.keys[kid].Issuer == "" {
			return fmt.Errorf("key %q is not bound to an issuer", kid)
		}
	}
	return nil
}

// SetKeys replaces the verification keys, for example when the published JWKS
// changes. Every key must be bound to an issuer. Cached results for tokens
// whose key is gone or changed stop being accepted at once.
func (v *Verifier) SetKeys(ks *KeySet) error {
	if err := checkKeys(ks); err != nil {
		return fmt.Errorf("set verifier keys: %w", err)
	}
	v.keys.Store(ks)
	return nil
}

// Keys returns the current verification keys.
func (v *Verifier) Keys() *KeySet { return v.keys.Load() }

// SetRevocations replaces the revocation list; nil revokes nothing. Cached
// results for revoked tokens stop being accepted at once.
func (v *Verifier) SetRevocations(r *Revocations) { v.revoked.Store(r) }

// Verify checks a token and returns what it establishes. On failure the error
// is an *Error whose Reason is for metrics and logs only.
func (v *Verifier) Verify(token string) (Verified, error) {
	out, _, err := v.verify(token, v.clock.Now(), v.keys.Load(), v.revoked.Load())
	return out, err
}

// verification is what the cache needs beyond the Verified result.
type verification struct {
	// key is the key that verified the token.
	key *verifyKey
	// validFrom is the latest of nbf and iat; zero if neither is present.
	validFrom time.Time
}

// verify runs every check against one snapshot of the keys and revocations.
func (v *Verifier) verify(token string, now time.Time, ks *KeySet, revoked *Revocations) (Verified, verification, error) {
	// Cheap structural checks first, on the raw string: nothing is decoded
	// until the token is known to be a compact JWS of sane size. A JWE (five
	// segments, where PBES2 would invite an expensive key derivation) or
	// the JSON serialization stops here.
	if len(token) > v.maxSize {
		return Verified{}, verification{}, errTooLarge
	}
	d1, d2 := -1, -1
	for i := 0; i < len(token); i++ {
		c := token[i]
		if c == '.' {
			switch {
			case d1 < 0:
				d1 = i
			case d2 < 0:
				d2 = i
			default:
				return Verified{}, verification{}, errMalformed
			}
			continue
		}
		if b64URLValue[c] == invalid {
			return Verified{}, verification{}, errMalformed
		}
	}
	if d2 < 0 || d1 == 0 || d2 == d1+1 ||
		decodedLen(d1) < 0 || decodedLen(d2-d1-1) < 0 || decodedLen(len(token)-d2-1) < 0 {
		return Verified{}, verification{}, errMalformed
	}

	// Header.
	var hbuf [512]byte
	hdst := hbuf[:]
	if hn := decodedLen(d1); hn > len(hdst) {
		hdst = make([]byte, hn)
	}
	hn, ok := decodeSegment(hdst, token[:d1])
	if !ok {
		return Verified{}, verification{}, errMalformed
	}
	h, err := parseHeader(hdst[:hn])
	if err != nil {
		return Verified{}, verification{}, err
	}
	if h.forbidden {
		return Verified{}, verification{}, errForbiddenHeader
	}
	alg, ok := algorithmFromHeader(h.alg)
	if !ok {
		return Verified{}, verification{}, errUnsupportedAlgorithm
	}
	if len(h.kid) == 0 {
		return Verified{}, verification{}, errMissingKeyID
	}
	var key *verifyKey
	if ks != nil {
		key = ks.keys[string(h.kid)]
	}
	if key == nil {
		return Verified{}, verification{}, errUnknownKey
	}
	if key.Algorithm != alg {
		return Verified{}, verification{}, errAlgorithmMismatch
	}
	if !v.typeAccepted(key, h) {
		return Verified{}, verification{}, errWrongType
	}

	// Signature, over the first two segments exactly as received.
	var sbuf [maxSignatureSize]byte
	sigText := token[d2+1:]
	if decodedLen(len(sigText)) > len(sbuf) {
		return Verified{}, verification{}, errBadSignature
	}
	sn, ok := decodeSegment(sbuf[:], sigText)
	if !ok {
		return Verified{}, verification{}, errMalformed
	}
	if !key.verify(token[:d2], sbuf[:sn]) {
		return Verified{}, verification{}, errBadSignature
	}

	// Claims, only now that they are authenticated.
	payloadText := token[d1+1 : d2]
	payload := make([]byte, decodedLen(len(payloadText)))
	pn, ok := decodeSegment(payload, payloadText)
	if !ok {
		return Verified{}, verification{}, errMalformed
	}
	c := claims{subjectClaim: key.SubjectClaim, audiences: v.audiences}
	if len(key.Audiences) > 0 {
		c.audiences = key.Audiences
	}
	if c.subjectClaim == "" {
		c.subjectClaim = "sub"
	}
	if err := parseClaims(payload[:pn], &c); err != nil {
		return Verified{}, verification{}, err
	}
	return v.checkClaims(&c, key, now, revoked)
}

func (v *Verifier) checkClaims(c *claims, key *verifyKey, now time.Time, revoked *Revocations) (Verified, verification, error) {
	if !c.hasIss || string(c.iss) != key.Issuer {
		return Verified{}, verification{}, errWrongIssuer
	}
	if !c.audMatches {
		return Verified{}, verification{}, errWrongAudience
	}
	nowSec := now.Unix()
	if c.hasExp {
		if !now.Before(time.Unix(c.exp, 0).Add(v.leeway)) {
			return Verified{}, verification{}, errExpired
		}
	} else if !v.allowNonExpiring {
		return Verified{}, verification{}, errMissingExpiry
	}
	if c.hasNbf && now.Add(v.leeway).Before(time.Unix(c.nbf, 0)) {
		return Verified{}, verification{}, errNotYetValid
	}
	if c.hasIat && now.Add(v.leeway).Before(time.Unix(c.iat, 0)) {
		return Verified{}, verification{}, errIssuedInFuture
	}
	if c.hasExp {
		// Without iat, measure from now, allowing for the issuer's clock
		// being ahead of ours by up to the leeway.
		start, limit := nowSec, v.maxLifetime+v.leewaySeconds
		if c.hasIat {
			start, limit = c.iat, v.maxLifetime
		}
		if c.exp-start > limit {
			return Verified{}, verification{}, errLifetimeTooLong
		}
	}
	if !c.hasSub || len(c.sub) == 0 {
		return Verified{}, verification{}, errMissingClaim
	}
	if c.hasJti && revoked.containsBytes(c.jti) {
		return Verified{}, verification{}, errRevoked
	}

	out := Verified{
		Subject: string(c.sub),
		Issuer:  key.Issuer,
		ID:      string(c.jti),
		KeyID:   key.KeyID,
	}
	if c.hasExp {
		out.Expiry = time.Unix(c.exp, 0)
	}
	if c.hasIat {
		out.IssuedAt = time.Unix(c.iat, 0)
	}
	if len(c.perms) > 0 {
		out.Perms = c.perms
		g, err := permission.Compile(out.Perms)
		if err != nil {
			return Verified{}, verification{}, errBadClaim
		}
		out.Grants = g
	}
	detail := verification{key: key}
	for _, t := range [...]struct {
		has bool
		at  int64
	}{{c.hasNbf, c.nbf}, {c.hasIat, c.iat}} {
		if t.has && (detail.validFrom.IsZero() || time.Unix(t.at, 0).After(detail.validFrom)) {
			detail.validFrom = time.Unix(t.at, 0)
		}
	}
	return out, detail, nil
}

// typeAccepted checks the header "typ" against the key's issuer override or
// the verifier's type. Comparison ignores case and an "application/" prefix
// (RFC 7515 section 4.1.9).
func (v *Verifier) typeAccepted(key *verifyKey, h header) bool {
	if key.Types == nil {
		return h.hasTyp && (bytes.EqualFold(h.typ, v.typ) || bytes.EqualFold(h.typ, v.appTyp))
	}
	typ := h.typ
	if len(typ) > len("application/") && bytes.EqualFold(typ[:len("application/")], []byte("application/")) {
		typ = typ[len("application/"):]
	}
	for _, t := range key.Types {
		if t == "" && !h.hasTyp {
			return true
		}
		if t != "" && h.hasTyp && strings.EqualFold(string(typ), t) {
			return true
		}
	}
	return false
}

// verify checks a signature made with this key over input.
func (k *verifyKey) verify(input string, sig []byte) bool {
	switch k.Algorithm {
	case EdDSA:
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(k.ed, []byte(input), sig)
	case ES256:
		// JWS ES256 signatures are the fixed-size r||s (RFC 7518 section
		// 3.4); an ASN.1 DER signature is refused by length alone.
		if len(sig) != 64 {
			return false
		}
		r := new(big.Int).SetBytes(sig[:32])
		s := new(big.Int).SetBytes(sig[32:])
		if r.Sign() == 0 || s.Sign() == 0 {
			return false
		}
		digest := sha256.Sum256([]byte(input))
		return ecdsa.Verify(k.ec, digest[:], r, s)
	case RS256:
		if len(sig) != k.rsa.Size() {
			return false
		}
		digest := sha256.Sum256([]byte(input))
		return rsa.VerifyPKCS1v15(k.rsa, crypto.SHA256, digest[:], sig) == nil
	}
	return false
}
