// Package trust builds, from a TokenPolicy and what the controller publishes for it, the
// strict token verifier that the token service and every agent use: the policy's own keys
// bound to its issuer, each trusted external issuer's keys bound to that issuer, the revoked
// token IDs, and the policy's lifetimes.
package trust

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/utils/clock"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/permission"
	"github.com/camfleet/camfleet/internal/token"
)

// Token types in the header: access tokens follow RFC 9068; refresh tokens have their own so
// one is never accepted as the other.
const (
	AccessType  = token.TypeAccess
	RefreshType = token.TypeRefresh
)

// Published is what the controller publishes for a policy in its ConfigMap.
type Published struct {
	// JWKS is the policy's own public keys.
	JWKS []byte
	// Revoked is the JSON array of revoked token IDs.
	Revoked []byte
	// External maps an external issuer to its resolved JWKS: read from its jwksConfigMapRef,
	// or published in the policy's status (inline keys included).
	External map[string][]byte
}

// Issuer is a policy's effective issuer: its spec, or the token service's external URL
// followed by the policy's path, where OpenID Connect discovery looks for it.
func Issuer(p *camv1.TokenPolicy, serviceURL string) string {
	if p.Spec.Issuer != "" {
		return p.Spec.Issuer
	}
	base := strings.TrimSuffix(serviceURL, "/")
	if base == "" {
		base = "urn:camfleet"
	}
	return fmt.Sprintf("%s/policies/%s/%s", base, p.Namespace, p.Name)
}

// Lifetimes are a policy's token lifetimes with defaults applied.
type Lifetimes struct {
	Access, Refresh, Max, Leeway time.Duration
	AllowNonExpiring             bool
}

// LifetimesOf reads a policy's token lifetimes, with the API defaults for unset fields.
func LifetimesOf(p *camv1.TokenPolicy) Lifetimes {
	t := p.Spec.Tokens
	l := Lifetimes{Access: 15 * time.Minute, Refresh: 720 * time.Hour, Max: 720 * time.Hour, Leeway: 30 * time.Second, AllowNonExpiring: t.AllowNonExpiring}
	if t.AccessTTL != nil {
		l.Access = t.AccessTTL.Duration
	}
	if t.RefreshTTL != nil {
		l.Refresh = t.RefreshTTL.Duration
	}
	if t.MaxTTL != nil {
		l.Max = t.MaxTTL.Duration
	}
	if t.Leeway != nil {
		l.Leeway = t.Leeway.Duration
	}
	return l
}

// Audiences are the aud values the policy's own tokens carry and its verifiers accept for
// them. Each external issuer's tokens are held to that issuer's audience instead
// (externalAudiences), so one issuer's audience never admits another's tokens.
func Audiences(p *camv1.TokenPolicy) []string {
	out := append([]string(nil), p.Spec.Audience...)
	if len(out) == 0 {
		out = []string{"camfleet"}
	}
	return out
}

// externalAudiences are the aud values accepted on an external issuer's tokens: its own
// audience, else the policy's.
func externalAudiences(p *camv1.TokenPolicy, e camv1.ExternalIssuer) []string {
	if e.Audience != "" {
		return []string{e.Audience}
	}
	return Audiences(p)
}

// KeySet binds the policy's own keys to its issuer and each external issuer's keys to that
// issuer. An external issuer whose keys cannot be used is left out and reported; the
// policy's own keys must be sound.
func KeySet(p *camv1.TokenPolicy, issuer string, pub Published) (*token.KeySet, []error, error) {
	own, err := ownKeys(p, issuer, pub)
	if err != nil {
		return nil, nil, err
	}
	sets := []*token.KeySet{own}
	var problems []error
	for _, e := range p.Spec.ExternalIssuers {
		ks, err := externalKeys(e, pub.External[e.Issuer])
		if err == nil {
			ks, err = ks.Bind(token.Binding{Issuer: e.Issuer, SubjectClaim: e.SubjectClaim, Types: []string{"", "JWT", "jwt", AccessType}, Audiences: externalAudiences(p, e)})
		}
		if err == nil {
			err = kidsClash(sets, ks)
		}
		if err != nil {
			problems = append(problems, fmt.Errorf("external issuer %s: %w", e.Issuer, err))
			continue
		}
		sets = append(sets, ks)
	}
	merged, err := token.MergeKeySets(sets...)
	if err != nil {
		return nil, problems, err
	}
	return merged, problems, nil
}

// ownKeys are the policy's own published keys, bound to its issuer.
func ownKeys(p *camv1.TokenPolicy, issuer string, pub Published) (*token.KeySet, error) {
	own, err := token.ParseJWKS(pub.JWKS)
	if err != nil {
		return nil, fmt.Errorf("policy %s/%s JWKS: %w", p.Namespace, p.Name, err)
	}
	return own.BindIssuer(issuer)
}

// kidsClash refuses an external issuer's keys when one reuses a kid already trusted (kids are
// public, so anyone may copy the policy's own): one such key must cost that issuer its
// trust, never break verification for the whole policy.
func kidsClash(trusted []*token.KeySet, ks *token.KeySet) error {
	for _, k := range ks.Keys() {
		for _, t := range trusted {
			if _, taken := t.Lookup(k.KeyID); taken {
				return fmt.Errorf("key %s reuses a kid already trusted by this policy; the issuer is left out", k.KeyID)
			}
		}
	}
	return nil
}

// Verifier is the strict verifier for a policy's access tokens (or refresh tokens, with
// RefreshType), ready for the hot path.
func Verifier(p *camv1.TokenPolicy, issuer string, pub Published, typ string, c clock.PassiveClock) (*token.Verifier, []error, error) {
	var ks *token.KeySet
	var problems []error
	var err error
	if typ == RefreshType {
		// Only the policy itself issues refresh tokens: an external issuer's key, however
		// trusted for access, must never mint a session of ours.
		ks, err = ownKeys(p, issuer, pub)
	} else {
		ks, problems, err = KeySet(p, issuer, pub)
	}
	if err != nil {
		return nil, problems, err
	}
	var revoked []string
	if len(pub.Revoked) > 0 {
		if err := json.Unmarshal(pub.Revoked, &revoked); err != nil {
			return nil, problems, fmt.Errorf("policy %s/%s revoked token IDs: %w", p.Namespace, p.Name, err)
		}
	}
	l := LifetimesOf(p)
	aud := Audiences(p)
	if typ == RefreshType {
		aud = []string{issuer}
	}
	v, err := token.NewVerifier(token.Config{
		Keys: ks, Audiences: aud, Type: typ, Leeway: l.Leeway, MaxLifetime: max(l.Max, l.Refresh),
		AllowNonExpiring: l.AllowNonExpiring, Revoked: token.NewRevocations(revoked...), Clock: c,
	})
	return v, problems, err
}

// ExternalJWKS resolves an external issuer's keys (inline, or fromConfigMap, the JWKS read
// from its jwksConfigMapRef) into one JWKS, as the controller publishes it in status.
func ExternalJWKS(e camv1.ExternalIssuer, fromConfigMap []byte) ([]byte, error) {
	ks, err := externalKeys(e, fromConfigMap)
	if err != nil {
		return nil, err
	}
	return ks.MarshalJWKS()
}

// externalKeys reads an external issuer's keys: the resolved JWKS when one was published,
// else inline PEM public keys or JWKs, or the JWKS from its ConfigMap.
func externalKeys(e camv1.ExternalIssuer, published []byte) (*token.KeySet, error) {
	if len(published) > 0 {
		return token.ParseJWKS(published)
	}
	if e.JWKSConfigMapRef != nil {
		return nil, errors.New("its JWKS ConfigMap is missing or empty")
	}
	var keys []token.PublicKey
	for i, text := range e.PublicKeys {
		k, err := parsePublicKey(text)
		if err != nil {
			return nil, fmt.Errorf("publicKeys[%d]: %w", i, err)
		}
		keys = append(keys, k)
	}
	return token.NewKeySet(keys...)
}

// parsePublicKey reads one PEM public key (kid: its RFC 7638 thumbprint) or one JWK.
func parsePublicKey(text string) (token.PublicKey, error) {
	text = strings.TrimSpace(text)
	if strings.HasPrefix(text, "{") {
		set, err := token.ParseJWKS([]byte(`{"keys":[` + text + `]}`))
		if err != nil {
			return token.PublicKey{}, err
		}
		return set.Keys()[0], nil
	}
	block, _ := pem.Decode([]byte(text))
	if block == nil || block.Type != "PUBLIC KEY" {
		return token.PublicKey{}, errors.New("not a PEM public key (-----BEGIN PUBLIC KEY-----) or a JWK")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return token.PublicKey{}, fmt.Errorf("parse PEM public key: %w", err)
	}
	alg, err := token.AlgorithmOf(pub)
	if err != nil {
		return token.PublicKey{}, err
	}
	kid, err := token.Thumbprint(pub)
	if err != nil {
		return token.PublicKey{}, err
	}
	return token.PublicKey{KeyID: kid, Algorithm: alg, Key: pub}, nil
}

// Permissions are what a verified token grants under a policy: the permissions our own
// tokens carry, or, for a trusted external issuer's token, those of the roles the policy
// gives that issuer (its own claims grant nothing here).
func Permissions(p *camv1.TokenPolicy, issuer string, v token.Verified) ([]string, error) {
	if v.Issuer == issuer {
		return v.Perms, nil
	}
	for _, e := range p.Spec.ExternalIssuers {
		if e.Issuer == v.Issuer {
			return RolePermissions(p, e.Roles)
		}
	}
	return nil, fmt.Errorf("issuer %q is not trusted by policy %s/%s", v.Issuer, p.Namespace, p.Name)
}

// RolePermissions expands role names into permission strings.
func RolePermissions(p *camv1.TokenPolicy, roles []string) ([]string, error) {
	defs := map[string][]string{}
	for _, r := range p.Spec.Roles {
		for _, perm := range r.Permissions {
			defs[r.Name] = append(defs[r.Name], string(perm))
		}
	}
	compiled, err := permission.CompileRoles(defs)
	if err != nil {
		return nil, fmt.Errorf("roles of %s/%s: %w", p.Namespace, p.Name, err)
	}
	return compiled.Permissions(roles...)
}
