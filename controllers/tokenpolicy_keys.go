package controllers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/keys"
)

// Labels on every object the controller owns, so its caches and agents select only those.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "camfleet"
	LabelPolicy    = "camfleet.io/policy"
	// RevokedKey is the ConfigMap data key of the revoked token IDs, published beside the JWKS.
	RevokedKey = "revoked.json"
)

func secretName(p *camv1.TokenPolicy) string    { return p.Name + "-signing-keys" }
func configMapName(p *camv1.TokenPolicy) string { return p.Name + "-jwks" }

func ownedLabels(p *camv1.TokenPolicy) map[string]string {
	return map[string]string{LabelManagedBy: ManagedBy, LabelPolicy: p.Name}
}

// storeKeys writes the key set to the policy's Secret when it changed. A write that loses a
// race fails on the resourceVersion, and the next reconcile starts again from what is stored,
// so a key is never lost or stored twice.
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
		s.Name, s.Namespace, s.Labels = secretName(run.policy), run.policy.Namespace, ownedLabels(run.policy)
		if err := controllerutil.SetControllerReference(run.policy, s, r.Scheme()); err != nil {
			return err
		}
		if err := r.Create(ctx, s); err != nil {
			return fmt.Errorf("create signing-key Secret for %s: %w", client.ObjectKeyFromObject(run.policy), err)
		}
		run.secret = s
		return nil
	}
	run.secret.Data = data
	if err := r.Update(ctx, run.secret); err != nil {
		return fmt.Errorf("update signing-key Secret for %s: %w", client.ObjectKeyFromObject(run.policy), err)
	}
	return nil
}

// publishKeys writes the public JWKS of every key in the set, and the revoked token IDs,
// to the policy's ConfigMap when they changed.
func (r *TokenPolicyReconciler) publishKeys(ctx context.Context, run *policyRun) error {
	jwks, err := run.set.JWKS()
	if err != nil {
		return fmt.Errorf("render JWKS of %s: %w", client.ObjectKeyFromObject(run.policy), err)
	}
	revoked := slices.Clone(run.policy.Spec.RevokedTokenIDs)
	sort.Strings(revoked)
	if revoked == nil {
		revoked = []string{}
	}
	rev, err := json.Marshal(revoked)
	if err != nil {
		return err
	}
	data := map[string]string{keys.JWKSKey: string(jwks), RevokedKey: string(rev)}
	cm := &corev1.ConfigMap{}
	err = r.Get(ctx, client.ObjectKey{Namespace: run.policy.Namespace, Name: configMapName(run.policy)}, cm)
	if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("read JWKS ConfigMap of %s: %w", client.ObjectKeyFromObject(run.policy), err)
	}
	if err != nil {
		cm = &corev1.ConfigMap{Data: data}
		cm.Name, cm.Namespace, cm.Labels = configMapName(run.policy), run.policy.Namespace, ownedLabels(run.policy)
		if err := controllerutil.SetControllerReference(run.policy, cm, r.Scheme()); err != nil {
			return err
		}
		if err := r.Create(ctx, cm); err != nil {
			return fmt.Errorf("publish JWKS for %s: %w", client.ObjectKeyFromObject(run.policy), err)
		}
		run.cm = cm
		return nil
	}
	run.cm = cm
	if maps.Equal(cm.Data, data) {
		return nil
	}
	cm.Data = data
	if err := r.Update(ctx, cm); err != nil {
		return fmt.Errorf("publish JWKS for %s: %w", client.ObjectKeyFromObject(run.policy), err)
	}
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
		r.event(run.policy, corev1.EventTypeNormal, "KeyPublished", "Publish", "key %s (%s, %s) is published in ConfigMap %s", k.ID, k.Algorithm, k.State, configMapName(run.policy))
	}
	return nil
}

// countAgents reads which agents serving the policy's cameras hold the pending key.
func (r *TokenPolicyReconciler) countAgents(ctx context.Context, run *policyRun) error {
	var cams camv1.CameraList
	if err := r.List(ctx, &cams); err != nil {
		return fmt.Errorf("list cameras for %s: %w", client.ObjectKeyFromObject(run.policy), err)
	}
	run.cameras = run.cameras[:0]
	me := client.ObjectKeyFromObject(run.policy)
	for i := range cams.Items {
		if governingPolicy(&cams.Items[i], r.DefaultPolicy) == me {
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
