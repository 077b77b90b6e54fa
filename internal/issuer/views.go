package issuer

import (
	"fmt"
	"sync"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/publication"
	"github.com/camfleet/camfleet/internal/token"
	"github.com/camfleet/camfleet/internal/trust"
)

// view is what the token service derives from one version of a TokenPolicy: its issuer, the
// JWKS it serves and, built on first use, its verifiers. All of it comes from the policy
// object alone: its spec, and its status.verification, where the controller publishes the
// policy's public keys, the revoked token IDs and every external issuer's resolved keys (the
// material the agents verify with). So the policy's UID and resourceVersion say exactly when a
// view is stale, and the token service reads no ConfigMap to verify: not the policy's JWKS
// ConfigMap, nor the users' ConfigMaps that external issuers' JWKS live in.
type view struct {
	// policy is the version this view was made of; requests read their own copy.
	policy    *camv1.TokenPolicy
	issuer    string
	published trust.Published

	access, refresh lazyVerifier
}

// lazyVerifier is a verifier built once, on first use: a policy version that only ever serves
// its JWKS never parses a key.
type lazyVerifier struct {
	once sync.Once
	v    *token.Verifier
	err  error
}

// views keeps one view per policy, so that what anyone may ask without a credential (the
// JWKS, discovery, a login with a wrong password, a refused token) costs neither an API
// request nor a key-set parse: a view is rebuilt only when its policy changes. It holds at most
// one view per policy that exists: a policy found missing loses its view.
type views struct {
	mu sync.Mutex
	m  map[types.NamespacedName]*view
	// builds counts the verifiers built, so tests can see that requests reuse them.
	builds atomic.Int64
}

func newViews() *views { return &views{m: map[types.NamespacedName]*view{}} }

// of is the view of p's current version, built when p changed since the last one.
func (vs *views) of(p *camv1.TokenPolicy, serviceURL string) (*view, error) {
	key := types.NamespacedName{Namespace: p.Namespace, Name: p.Name}
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if v, ok := vs.m[key]; ok && v.policy.UID == p.UID && v.policy.ResourceVersion == p.ResourceVersion {
		return v, nil
	}
	pub, ok, err := publication.FromStatus(p)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("policy %s has no published keys yet", key)
	}
	v := &view{policy: p.DeepCopy(), issuer: trust.Issuer(p, serviceURL), published: pub}
	vs.m[key] = v
	return v, nil
}

// forget drops the view of a policy that no longer exists.
func (vs *views) forget(key types.NamespacedName) {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	delete(vs.m, key)
}

// verifier is the strict verifier of the view's access tokens, or with trust.RefreshType of
// its refresh tokens, built on first use.
func (vs *views) verifier(v *view, typ string, c clock.PassiveClock) (*token.Verifier, error) {
	lv := &v.access
	if typ == trust.RefreshType {
		lv = &v.refresh
	}
	lv.once.Do(func() {
		vs.builds.Add(1)
		// Problems (external issuers left out) are the controller's to report in status.
		lv.v, _, lv.err = trust.Verifier(v.policy, v.issuer, v.published, typ, c)
	})
	return lv.v, lv.err
}
