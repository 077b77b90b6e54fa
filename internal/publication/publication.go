// Package publication is the contract between the controller, the token service and the
// agents: the names and labels of what the controller publishes for a TokenPolicy, which
// policy governs a Camera, and how a verifier reads a policy's published material. It imports
// no controller code, so each of them can use it without importing another.
package publication

import (
	"encoding/json"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/trust"
)

// Labels on every object the controller owns, so its caches select only those.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "camfleet"
	LabelPolicy    = "camfleet.io/policy"
)

// Data keys of the policy's ConfigMap.
const (
	// JWKSKey holds the public JWKS.
	JWKSKey = "jwks.json"
	// RevokedKey holds the JSON array of revoked token IDs, beside the JWKS.
	RevokedKey = "revoked.json"
)

// SecretName is the Secret holding the private keys of the named policy.
func SecretName(policy string) string { return policy + "-signing-keys" }

// ConfigMapName is the ConfigMap holding the public JWKS of the named policy.
func ConfigMapName(policy string) string { return policy + "-jwks" }

// SessionsName is the ConfigMap in which the token service keeps the named policy's refresh
// sessions.
func SessionsName(policy string) string { return policy + "-sessions" }

// OwnsSessions says whether cm is the session store that the token service created for p:
// labelled as camfleet's for p and owned by p's UID. The token service neither reads nor
// writes a ConfigMap under SessionsName that fails this (it may be someone's data), and the
// controller reports one on the policy; both decide with this one rule.
func OwnsSessions(p *camv1.TokenPolicy, cm *corev1.ConfigMap) bool {
	for k, v := range OwnedLabels(p.Name) {
		if cm.Labels[k] != v {
			return false
		}
	}
	for _, ref := range cm.OwnerReferences {
		if ref.UID == p.UID {
			return true
		}
	}
	return false
}

// PolicyOfConfigMap is the policy whose JWKS ConfigMap cm is, or "" when it is none.
func PolicyOfConfigMap(cm metaNamed) string {
	p := cm.GetLabels()[LabelPolicy]
	if p == "" || cm.GetName() != ConfigMapName(p) {
		return ""
	}
	return p
}

type metaNamed interface {
	GetName() string
	GetLabels() map[string]string
}

// OwnedLabels are the labels of the objects the controller keeps for the named policy.
func OwnedLabels(policy string) map[string]string {
	return map[string]string{LabelManagedBy: ManagedBy, LabelPolicy: policy}
}

// GoverningPolicy is the TokenPolicy whose tokens a Camera accepts: its tokenPolicyRef (in
// the Camera's namespace unless it names another), else def: one policy for every Camera,
// or, when def has no namespace, the policy of that name in the Camera's own namespace.
func GoverningPolicy(cam *camv1.Camera, def types.NamespacedName) types.NamespacedName {
	ref := cam.Spec.TokenPolicyRef
	if ref == nil {
		if def.Name != "" && def.Namespace == "" {
			// A bare default names each namespace's own policy of that name.
			def.Namespace = cam.Namespace
		}
		return def
	}
	ns := ref.Namespace
	if ns == "" {
		ns = cam.Namespace
	}
	return types.NamespacedName{Namespace: ns, Name: ref.Name}
}

// FromConfigMap reads what the controller published for a policy in its ConfigMap.
func FromConfigMap(cm *corev1.ConfigMap) trust.Published {
	return trust.Published{JWKS: []byte(cm.Data[JWKSKey]), Revoked: []byte(cm.Data[RevokedKey]), External: map[string][]byte{}}
}

// FromStatus reads what the controller published for a policy in its status: the same
// material as the ConfigMap, plus each external issuer's resolved keys. ok is false while the
// controller has published nothing yet.
func FromStatus(p *camv1.TokenPolicy) (pub trust.Published, ok bool, err error) {
	v := p.Status.Verification
	if v == nil || v.JWKS == "" {
		return trust.Published{}, false, nil
	}
	rev, err := RevokedJSON(v.RevokedTokenIDs)
	if err != nil {
		return trust.Published{}, false, fmt.Errorf("revoked token IDs of %s/%s: %w", p.Namespace, p.Name, err)
	}
	pub = trust.Published{JWKS: []byte(v.JWKS), Revoked: rev, External: map[string][]byte{}}
	for _, e := range v.ExternalIssuers {
		if e.JWKS != "" {
			pub.External[e.Issuer] = []byte(e.JWKS)
		}
	}
	return pub, true, nil
}

// RevokedJSON is the sorted JSON array of revoked token IDs, as published.
func RevokedJSON(ids []string) ([]byte, error) {
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	if sorted == nil {
		sorted = []string{}
	}
	return json.Marshal(sorted)
}
