package controllers

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/keys"
	"github.com/camfleet/camfleet/internal/publication"
	"github.com/camfleet/camfleet/internal/token"
	"github.com/camfleet/camfleet/internal/trust"
)

// storeKeys writes the key set to the policy's Secret when it changed. A write that loses a
// race fails on the resourceVersion, and the next reconcile starts again from what is stored,
// so a key is never lost or stored twice.
//
// Unlike the objects the controller applies, this Secret is created and updated whole: its
// data must be exactly the key set, and a server-side apply keeps entries another field
// manager owns, so a key someone pasted in would stay (and be reported) for ever. Create is
// also the only write that fails when the Secret exists, so a key set is never written over
// one the controller has not read.
func (r *TokenPolicyReconciler) storeKeys(ctx context.Context, run *policyRun) error {
	data, err := run.set.Encode()
	if err != nil {
		return fmt.Errorf("encode signing keys of %s: %w", client.ObjectKeyFromObject(run.policy), err)
	}
	if run.secret != nil && maps.EqualFunc(run.secret.Data, data, bytes.Equal) {
		return nil
	}
	if run.secret == nil {
		s := &corev1.Secret{Type: keys.SecretType, Data: data}
		s.Name, s.Namespace, s.Labels = publication.SecretName(run.policy.Name), run.policy.Namespace, publication.OwnedLabels(run.policy.Name)
		if err := controllerutil.SetControllerReference(run.policy, s, r.Scheme()); err != nil {
			return fmt.Errorf("own signing-key Secret of %s: %w", client.ObjectKeyFromObject(run.policy), err)
		}
		if err := r.Create(ctx, s, fieldOwner); err != nil {
			return fmt.Errorf("create signing-key Secret for %s: %w", client.ObjectKeyFromObject(run.policy), err)
		}
		run.secret = s
		return nil
	}
	run.secret.Data = data
	if err := r.Update(ctx, run.secret, fieldOwner); err != nil {
		return fmt.Errorf("update signing-key Secret for %s: %w", client.ObjectKeyFromObject(run.policy), err)
	}
	return nil
}

// publishKeys applies the policy's ConfigMap: the public JWKS of every key in the set and the
// revoked token IDs, server-side as the controller's field manager, so a hand edit is taken
// back. A ConfigMap of that name the policy does not own is never written: the policy stalls.
func (r *TokenPolicyReconciler) publishKeys(ctx context.Context, run *policyRun) error {
	p := run.policy
	jwks, err := run.set.JWKS()
	if err != nil {
		return fmt.Errorf("render JWKS of %s: %w", client.ObjectKeyFromObject(p), err)
	}
	rev, err := publication.RevokedJSON(p.Spec.RevokedTokenIDs)
	if err != nil {
		return fmt.Errorf("render revoked token IDs of %s: %w", client.ObjectKeyFromObject(p), err)
	}
	key := client.ObjectKey{Namespace: p.Namespace, Name: publication.ConfigMapName(p.Name)}
	cm, err := readThrough(ctx, r.Client, r.APIReader, key, &corev1.ConfigMap{})
	switch {
	case err != nil:
		return fmt.Errorf("read JWKS ConfigMap of %s: %w", client.ObjectKeyFromObject(p), err)
	case cm != nil && !metav1.IsControlledBy(cm, p):
		return refuse(camv1.ReasonInvalidSpec, "ConfigMap %s exists and is not owned by this TokenPolicy; delete or rename it", cm.Name)
	}
	want := corev1ac.ConfigMap(key.Name, key.Namespace).
		WithOwnerReferences(controllerRef(camv1.GroupVersion.WithKind("TokenPolicy"), p)).
		WithLabels(publication.OwnedLabels(p.Name)).
		WithData(map[string]string{publication.JWKSKey: string(jwks), publication.RevokedKey: string(rev)})
	if cm != nil {
		if owned, err := corev1ac.ExtractConfigMap(cm, string(fieldOwner)); err == nil && appliedAlready(owned, want) {
			run.published = true
			return nil
		}
		want.WithResourceVersion(cm.ResourceVersion)
	}
	if err := r.Apply(ctx, want, fieldOwner, client.ForceOwnership); err != nil {
		return fmt.Errorf("publish JWKS for %s: %w", client.ObjectKeyFromObject(p), err)
	}
	run.published = true
	return nil
}

// recordPublication stamps the keys just published. Only now may their publishAhead start:
// a key whose JWKS write failed or never happened has no stamp and cannot sign.
func (r *TokenPolicyReconciler) recordPublication(ctx context.Context, run *policyRun) error {
	fresh := run.set.MarkPublished(run.now)
	if len(fresh) == 0 {
		return nil
	}
	if err := r.storeKeys(ctx, run); err != nil {
		return err
	}
	for _, k := range fresh {
		r.event(run.policy, corev1.EventTypeNormal, "KeyPublished", "Publish", "key %s (%s, %s) is published in ConfigMap %s", k.ID, k.Algorithm, k.State, publication.ConfigMapName(run.policy.Name))
	}
	return nil
}

// countAgents reads which agents serving the policy's cameras hold the pending key.
func (r *TokenPolicyReconciler) countAgents(ctx context.Context, run *policyRun) error {
	me := client.ObjectKeyFromObject(run.policy)
	var cams camv1.CameraList
	// The cameras are only read, and a policy of a 1000-node fleet has thousands: no copies.
	only := []client.ListOption{client.UnsafeDisableDeepCopy}
	if r.camerasIndexed {
		only = append(only, client.MatchingFields{cameraPolicyField: me.String()})
	}
	if err := r.List(ctx, &cams, only...); err != nil {
		return fmt.Errorf("list cameras for %s: %w", me, err)
	}
	run.cameras = run.cameras[:0]
	for i := range cams.Items {
		// The index holds the same rule; filtering again serves a reconciler without it.
		if r.governingPolicy(&cams.Items[i]) == me {
			run.cameras = append(run.cameras, &cams.Items[i])
		}
	}
	if pk := run.set.Pending(); pk != nil {
		run.agents = agentsHolding(run.cameras, pk.ID)
	}
	return nil
}

// agentsHolding counts the nodes serving cameras that have reported keys, and names those
// whose agent does not hold kid. Cameras no agent has reported on yet, and suspended ones,
// do not count: there is no agent to wait for.
func agentsHolding(cams []*camv1.Camera, kid string) keys.Agents {
	holds := map[string]bool{}
	for _, c := range cams {
		if c.Spec.Suspend || len(c.Status.LoadedKeyIDs) == 0 {
			continue
		}
		has := slices.Contains(c.Status.LoadedKeyIDs, kid)
		if prev, seen := holds[c.Spec.NodeName]; seen {
			has = has && prev
		}
		holds[c.Spec.NodeName] = has
	}
	a := keys.Agents{Total: len(holds)}
	for node, has := range holds {
		if !has {
			a.Lagging = append(a.Lagging, node)
		}
	}
	sort.Strings(a.Lagging)
	return a
}

// resolveExternal resolves each trusted external issuer's keys (inline, or the JWKS in its
// ConfigMap) into the JWKS verifiers read from status. An issuer whose keys cannot be
// resolved is published without keys and with a message, so its tokens are refused.
func (r *TokenPolicyReconciler) resolveExternal(ctx context.Context, run *policyRun) error {
	reader := r.APIReader
	if reader == nil {
		reader = r.Client
	}
	run.external = make([]camv1.ExternalIssuerStatus, 0, len(run.policy.Spec.ExternalIssuers))
	for _, e := range run.policy.Spec.ExternalIssuers {
		st := camv1.ExternalIssuerStatus{Issuer: e.Issuer, Audience: e.Audience, SubjectClaim: e.SubjectClaim, Roles: e.Roles}
		if st.SubjectClaim == "" {
			st.SubjectClaim = "sub"
		}
		var fromConfigMap []byte
		if ref := e.JWKSConfigMapRef; ref != nil {
			cm := &corev1.ConfigMap{}
			err := reader.Get(ctx, client.ObjectKey{Namespace: run.policy.Namespace, Name: ref.Name}, cm)
			if client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("read JWKS ConfigMap %s of external issuer %s: %w", ref.Name, e.Issuer, err)
			}
			key := ref.Key
			if key == "" {
				key = publication.JWKSKey
			}
			fromConfigMap = []byte(cm.Data[key])
		}
		jwks, err := trust.ExternalJWKS(e, fromConfigMap)
		if err == nil {
			err = kidClash(run.set, jwks)
		}
		if err != nil {
			st.Message = err.Error()
		} else {
			st.JWKS = string(jwks)
		}
		run.external = append(run.external, st)
	}
	if c := externalIssuersCondition(run.external); c != nil && !meta.IsStatusConditionFalse(run.policy.Status.Conditions, c.Type) {
		r.event(run.policy, corev1.EventTypeWarning, c.Reason, "ResolveExternalIssuers", "%s", c.Message)
	}
	return nil
}

// kidClash refuses an external JWKS that reuses a kid of the policy's own keys: verifiers
// would not know which key a token names.
func kidClash(set *keys.Set, jwks []byte) error {
	ext, err := token.ParseJWKS(jwks)
	if err != nil {
		return err
	}
	for _, k := range set.Keys {
		if _, taken := ext.Lookup(k.ID); taken {
			return fmt.Errorf("key %s reuses the kid of one of this policy's own keys; the issuer is left out", k.ID)
		}
	}
	return nil
}

func hasConfigMapIssuer(p *camv1.TokenPolicy) bool {
	return slices.ContainsFunc(p.Spec.ExternalIssuers, func(e camv1.ExternalIssuer) bool { return e.JWKSConfigMapRef != nil })
}

// verification is what verifiers read in status: the JWKS exactly as the ConfigMap holds it,
// the revoked IDs and the resolved external issuers.
func verification(run *policyRun) (*camv1.VerificationStatus, error) {
	jwks, err := run.set.JWKS()
	if err != nil {
		return nil, fmt.Errorf("render JWKS of %s: %w", client.ObjectKeyFromObject(run.policy), err)
	}
	revoked := slices.Clone(run.policy.Spec.RevokedTokenIDs)
	slices.Sort(revoked)
	external := run.external
	if external == nil && run.policy.Status.Verification != nil {
		// This run failed before resolving them: keep what was published.
		external = run.policy.Status.Verification.ExternalIssuers
	}
	return &camv1.VerificationStatus{JWKS: string(jwks), RevokedTokenIDs: slices.Compact(revoked), ExternalIssuers: external}, nil
}
