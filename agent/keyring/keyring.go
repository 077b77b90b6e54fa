// Package keyring holds, on a camera node, the verifiers of the TokenPolicies that govern the
// node's cameras, built from what the controller publishes in each policy's status. A policy
// update swaps its verifier at once: a new key is accepted, and a revoked key or token ID
// refused, from the next request on, with no restart.
package keyring

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/permission"
	"github.com/camfleet/camfleet/internal/publication"
	"github.com/camfleet/camfleet/internal/token"
	"github.com/camfleet/camfleet/internal/trust"
)

// cacheSize bounds each policy's cache of verified tokens; a node serves a handful of phones.
const cacheSize = 1024

// ErrUnknownPolicy: no verification material for the policy (not published yet, or not a
// policy of this node's cameras). Requests under it are refused.
var ErrUnknownPolicy = errors.New("no verification material for the policy")

// Principal is who a verified token speaks for and what it may do.
type Principal struct {
	Subject string
	Grants  permission.Set
	// Verified is the verifier's full result (expiry, token ID, key).
	Verified token.Verified
}

// Allows reports whether the principal holds the permission parts, such as
// ("camera", "stream", "ns/name").
func (p Principal) Allows(parts ...string) bool { return p.Grants.Allows(parts...) }

// entry is one policy's verifier with what it was built from.
type entry struct {
	policy      *camv1.TokenPolicy
	issuer      string
	verifier    *token.CachedVerifier
	loaded      []string
	active      string
	queryTokens bool
	// loadedAt is when this material was loaded.
	loadedAt time.Time
	// external maps an external issuer to the permissions its tokens get.
	external map[string]permission.Set
}

// Keyring is the set of verifiers of one node. It is safe for concurrent use.
type Keyring struct {
	Clock clock.PassiveClock

	mu       sync.RWMutex
	policies map[types.NamespacedName]*entry
	// version counts the changes to what the keyring enforces, so an agent can tell without
	// comparing policies whether its state file is still current.
	version uint64
}

// New returns an empty keyring.
func New(c clock.PassiveClock) *Keyring {
	return &Keyring{Clock: c, policies: map[types.NamespacedName]*entry{}}
}

// Update rebuilds a policy's verifier from its status. Until the controller has published
// keys for it, the policy has none and its tokens are refused. A policy whose published
// material cannot be read keeps its previous verifier, and the error says why.
func (k *Keyring) Update(p *camv1.TokenPolicy) error {
	key := types.NamespacedName{Namespace: p.Namespace, Name: p.Name}
	k.mu.RLock()
	old := k.policies[key]
	k.mu.RUnlock()
	if old != nil && SameMaterial(old.policy, p) {
		// Most status updates only move the agents' count: during a rotation of a 1000-node
		// fleet every agent sees dozens of them, and reading the published material again
		// each time (JWKS parsing, on every node at once) is what made the last agents late.
		return nil
	}
	pub, ok, err := publication.FromStatus(p)
	if err != nil {
		return err
	}
	if !ok {
		k.Remove(key)
		return nil
	}
	issuer := p.Status.Issuer
	if issuer == "" {
		return fmt.Errorf("policy %s has no issuer in status yet", key)
	}
	v, _, err := trust.Verifier(p, issuer, pub, trust.AccessType, k.Clock)
	if err != nil {
		return fmt.Errorf("build verifier for %s: %w", key, err)
	}
	e := &entry{policy: p.DeepCopy(), issuer: issuer, verifier: token.NewCachedVerifier(v, cacheSize),
		active: p.Status.ActiveKeyID, queryTokens: p.Spec.Tokens.AllowQueryToken, loadedAt: k.Clock.Now(), external: map[string]permission.Set{}}
	for _, pk := range v.Keys().Keys() {
		e.loaded = append(e.loaded, pk.KeyID)
	}
	slices.Sort(e.loaded)
	e.loaded = slices.Compact(e.loaded)
	for _, x := range p.Spec.ExternalIssuers {
		perms, err := trust.RolePermissions(p, x.Roles)
		if err != nil {
			continue
		}
		if set, err := permission.Compile(perms); err == nil {
			e.external[x.Issuer] = set
		}
	}
	k.mu.Lock()
	k.policies[key] = e
	k.version++
	k.mu.Unlock()
	return nil
}

// SameMaterial reports whether b verifies exactly as a does: the same spec (audience, token
// rules, roles, external issuers) and the same published issuer, keys and revocations. A
// policy status update that only moves the agents' count is the same material.
func SameMaterial(a, b *camv1.TokenPolicy) bool {
	return a.Status.Issuer == b.Status.Issuer && a.Status.ActiveKeyID == b.Status.ActiveKeyID &&
		equality.Semantic.DeepEqual(a.Spec, b.Spec) && equality.Semantic.DeepEqual(a.Status.Verification, b.Status.Verification)
}

// Remove forgets a policy.
func (k *Keyring) Remove(key types.NamespacedName) {
	k.mu.Lock()
	if _, ok := k.policies[key]; ok {
		delete(k.policies, key)
		k.version++
	}
	k.mu.Unlock()
}

// Version changes whenever what the keyring enforces does: a policy loaded with new
// material, or removed. Equal versions mean equal Snapshots.
func (k *Keyring) Version() uint64 {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.version
}

// Policies names the policies the keyring holds.
func (k *Keyring) Policies() []types.NamespacedName {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]types.NamespacedName, 0, len(k.policies))
	for key := range k.policies {
		out = append(out, key)
	}
	return out
}

// Verify checks an access token under a policy: the strict verifier, then the permissions
// it grants (our own tokens' claims, or the roles the policy gives an external issuer).
func (k *Keyring) Verify(policy types.NamespacedName, raw string) (Principal, error) {
	k.mu.RLock()
	e := k.policies[policy]
	k.mu.RUnlock()
	if e == nil {
		return Principal{}, ErrUnknownPolicy
	}
	v, err := e.verifier.Verify(raw)
	if err != nil {
		return Principal{}, err
	}
	if v.Issuer == e.issuer {
		return Principal{Subject: v.Subject, Grants: v.Grants, Verified: v}, nil
	}
	set, ok := e.external[v.Issuer]
	if !ok {
		return Principal{}, fmt.Errorf("issuer %q is not trusted by %s", v.Issuer, policy)
	}
	return Principal{Subject: v.Subject, Grants: set, Verified: v}, nil
}

// Still reports whether a token verified earlier would still pass now: its key still
// published, its ID not revoked, not expired. A stream checks it to close when its token
// goes bad.
func (k *Keyring) Still(policy types.NamespacedName, raw string) bool {
	_, err := k.Verify(policy, raw)
	return err == nil
}

// QueryTokensAllowed reports whether the policy lets a browser pass the token in the query
// string of the MJPEG stream.
func (k *Keyring) QueryTokensAllowed(policy types.NamespacedName) bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	e := k.policies[policy]
	return e != nil && e.queryTokens
}

// Keys are the key IDs loaded for a policy and the one its status names active.
func (k *Keyring) Keys(policy types.NamespacedName) (loaded []string, active string, ok bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	e := k.policies[policy]
	if e == nil {
		return nil, "", false
	}
	return slices.Clone(e.loaded), e.active, true
}

// LoadedAt is when the keyring loaded the material it enforces for a policy (the last change
// of keys, revocations or rules), zero for a policy it does not hold: how long after a
// publication a node enforced it.
func (k *Keyring) LoadedAt(policy types.NamespacedName) time.Time {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if e := k.policies[policy]; e != nil {
		return e.loadedAt
	}
	return time.Time{}
}

// Snapshot returns the policies the keyring holds, as they were when loaded, for the state
// file an agent keeps for outages.
func (k *Keyring) Snapshot() []*camv1.TokenPolicy {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]*camv1.TokenPolicy, 0, len(k.policies))
	for _, e := range k.policies {
		out = append(out, e.policy.DeepCopy())
	}
	return out
}
