package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/keys"
	"github.com/camfleet/camfleet/internal/token"
)

// pollEvery is how often the bench looks at every agent's keyring for the new material; the
// times come from the keyring itself (enforcedAt).
const pollEvery = 10 * time.Millisecond

// rotation is what one fleet-wide rotation took, every time measured from the annotation.
type rotation struct {
	// published is when the policy's status with the new key committed in etcd.
	published time.Duration
	// policyBytes is the size of the policy as its watchers received it with the new key: the
	// fan-out sends it to every agent.
	policyBytes int
	// enforcing is, per agent, when its keyring held the new key, sorted.
	enforcing []time.Duration
	// allReported is when the policy's AGENTS read N/N with the new key signing.
	allReported time.Duration
}

// spread says when the agents enforced the key, counted from its publication: the shape of
// the fan-out, for the progress log.
func (r rotation) spread() string {
	var parts []string
	for _, q := range []float64{0.1, 0.5, 0.9, 0.99, 1} {
		at := r.enforcing[min(int(q*float64(len(r.enforcing))), len(r.enforcing)-1)] - r.published
		parts = append(parts, fmt.Sprintf("p%.0f %s", q*100, at.Round(time.Millisecond)))
	}
	return fmt.Sprintf("%s (policy %d bytes)", strings.Join(parts, ", "), r.policyBytes)
}

// rotate annotates the policy for a rotation and follows the new key to every agent.
// name names its profiles (--profile).
func (f *fleet) rotate(ctx context.Context, id, name string, timeout time.Duration) (rotation, error) {
	var r rotation
	before := map[string]bool{}
	var p camv1.TokenPolicy
	if err := f.admin.Get(ctx, policyKey, &p); err != nil {
		return r, err
	}
	for _, k := range p.Status.Keys {
		before[k.KeyID] = true
	}
	n := len(f.agents)
	// The policy is followed in etcd, where its writes commit: the API server's watch would
	// deliver them to this bench somewhere in the fan-out to every agent, and polling it
	// every pollEvery was 100 GETs a second during the very seconds being measured.
	if f.policyCommits.key == nil {
		key, err := findKey(ctx, f.env.EtcdURL(), "/tokenpolicies/"+policyKey.Namespace+"/"+policyKey.Name)
		if err != nil {
			return r, err
		}
		f.policyCommits = commits{etcd: f.env.EtcdURL(), key: key}
	}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	committed, err := f.policyCommits.watch(wctx)
	if err != nil {
		return r, fmt.Errorf("follow %s: %w", policyKey, err)
	}
	var mu sync.Mutex
	var last camv1.TokenPolicy
	start := time.Now()
	go func() {
		want := fmt.Sprintf("%d/%d", n, n)
		newKey := ""
		for c := range committed {
			p := &c.policy
			at := c.at.Sub(start)
			mu.Lock()
			last = *p
			for _, k := range p.Status.Keys {
				if !before[k.KeyID] && r.published == 0 {
					r.published, newKey = at, k.KeyID
					if b, err := json.Marshal(p); err == nil {
						r.policyBytes = len(b)
					}
				}
			}
			if newKey != "" && p.Status.ActiveKeyID == newKey && p.Status.Agents == want && r.allReported == 0 {
				r.allReported = at
			}
			mu.Unlock()
		}
	}()
	stopProfiles, err := f.profiler.start(ctx, name)
	if err != nil {
		return r, err
	}
	if err := f.annotate(ctx, map[string]string{camv1.AnnotationRotate: id}); err != nil {
		return r, errors.Join(err, stopProfiles())
	}
	got := make([]time.Duration, n)
	left := n
	deadline := start.Add(timeout)
	for {
		now := time.Since(start)
		for i, a := range f.agents {
			if got[i] != 0 {
				continue
			}
			loaded, _, _ := a.agent.Keys.Keys(policyKey)
			for _, k := range loaded {
				if !before[k] {
					got[i] = enforcedAt(a, start, now)
					left--
					break
				}
			}
		}
		mu.Lock()
		done := left == 0 && r.allReported != 0
		res, p := r, last
		mu.Unlock()
		if done {
			slices.Sort(got)
			res.enforcing = got
			return res, stopProfiles()
		}
		if time.Now().After(deadline) {
			var lag []string
			for i, a := range f.agents {
				if got[i] == 0 && len(lag) < 10 {
					loaded, active, _ := a.agent.Keys.Keys(policyKey)
					source, why := a.agent.VerificationSource()
					lag = append(lag, fmt.Sprintf("%s (loaded %v, active %s, source %s %s)", a.node, loaded, active, source, why))
				}
			}
			return res, errors.Join(stopProfiles(), fmt.Errorf("rotation %s: after %s, %d of %d agents hold a new key; policy keys %d, agents %q; lagging: %s",
				id, timeout, n-left, n, len(p.Status.Keys), p.Status.Agents, strings.Join(lag, "; ")))
		}
		time.Sleep(pollEvery)
	}
}

// revoke signs a token with the active key, checks that every agent accepts it, annotates an
// emergency rotation with revoke, and measures when each agent refuses the token.
func (f *fleet) revoke(ctx context.Context, id string, timeout time.Duration) ([]time.Duration, error) {
	tok, err := f.signActive(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range f.agents {
		if _, err := a.agent.Keys.Verify(policyKey, tok); err != nil {
			return nil, fmt.Errorf("agent on %s refuses a token of the active key before the revoke: %w", a.node, err)
		}
	}
	start := time.Now()
	if err := f.annotate(ctx, map[string]string{camv1.AnnotationRotate: id, camv1.AnnotationRotateRevoke: "true"}); err != nil {
		return nil, err
	}
	n := len(f.agents)
	got := make([]time.Duration, n)
	left := n
	deadline := start.Add(timeout)
	for left > 0 {
		now := time.Since(start)
		for i, a := range f.agents {
			if got[i] == 0 {
				if _, err := a.agent.Keys.Verify(policyKey, tok); err != nil {
					got[i] = enforcedAt(a, start, now)
					left--
				}
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("revoke %s: after %s, %d of %d agents still accept the old token", id, timeout, left, n)
		}
		time.Sleep(pollEvery)
	}
	slices.Sort(got)
	return got, nil
}

// enforcedAt is when an agent seen enforcing new material at seen (both from start) began
// to: when its keyring loaded it. The look at every agent runs in the process the agents
// share, and while they are busy with the very update being measured it can fall seconds
// behind, stamping hundreds of agents at once.
func enforcedAt(a *simAgent, start time.Time, seen time.Duration) time.Duration {
	at := a.agent.Keys.LoadedAt(policyKey).Sub(start)
	if at <= 0 || at > seen {
		return seen
	}
	return at
}

// signActive signs an access token with the policy's active key, as the token service would.
func (f *fleet) signActive(ctx context.Context) (string, error) {
	var s corev1.Secret
	if err := f.admin.Get(ctx, client.ObjectKey{Namespace: fleetNS, Name: policySecret}, &s); err != nil {
		return "", fmt.Errorf("signing keys: %w", err)
	}
	set, _ := keys.Decode(s.Data, time.Now())
	a := set.Active()
	if a == nil {
		return "", fmt.Errorf("policy %s has no active key", policyKey)
	}
	var p camv1.TokenPolicy
	if err := f.admin.Get(ctx, policyKey, &p); err != nil {
		return "", err
	}
	now := time.Now()
	return token.Sign(token.Claims{Issuer: p.Status.Issuer, Subject: "bench", Audience: []string{"camfleet"},
		IssuedAt: now, Expiry: now.Add(10 * time.Minute), Perms: []string{"camera:snapshot:" + fleetNS + "/*"}},
		token.TypeAccess, token.SigningKey{KeyID: a.ID, Algorithm: token.Algorithm(a.Algorithm), Signer: a.Signer()})
}

func (f *fleet) annotate(ctx context.Context, kv map[string]string) error {
	var p camv1.TokenPolicy
	if err := f.admin.Get(ctx, policyKey, &p); err != nil {
		return err
	}
	base := p.DeepCopy()
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	for k, v := range kv {
		p.Annotations[k] = v
	}
	if err := f.admin.Patch(ctx, &p, client.MergeFrom(base)); err != nil {
		return fmt.Errorf("annotate %s: %w", policyKey, err)
	}
	return nil
}
