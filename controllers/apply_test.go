package controllers

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/camfleet/camfleet/internal/publication"
)

// appliedBy says whether the controller's field manager owns, by server-side apply, each of
// the fields named by its managedFields path, such as {"f:data", "f:token"}; else it returns
// what the manager owns, for the failure message.
func appliedBy(o metav1.Object, paths ...[]string) (bool, string) {
	for _, m := range o.GetManagedFields() {
		if m.Manager != string(fieldOwner) || m.Operation != metav1.ManagedFieldsOperationApply || m.FieldsV1 == nil {
			continue
		}
		var owned map[string]any
		if err := json.Unmarshal(m.FieldsV1.GetRawBytes(), &owned); err != nil {
			return false, err.Error()
		}
		for _, path := range paths {
			node := owned
			for _, step := range path {
				next, ok := node[step].(map[string]any)
				if !ok {
					return false, m.FieldsV1.GetRawString()
				}
				node = next
			}
		}
		return true, ""
	}
	return false, "no Apply entry by " + string(fieldOwner)
}

// TestOwnedObjectsAreAppliedByOneFieldManager: the AccessToken's Secret and the policy's JWKS
// ConfigMap are written by server-side apply as "camfleet-controller"; a hand edit of any
// field the controller applies (a label, an annotation, the JWKS) is taken back without
// re-minting, a key someone else added is left alone, and a settled object is not written.
// The signing-key Secret is written by the same field manager.
func TestOwnedObjectsAreAppliedByOneFieldManager(t *testing.T) {
	th := newTokenHarness(t)
	ctx := context.Background()
	th.rolesPolicy("tp")
	th.token("worker", "tp")
	th.mustReconcileToken("worker")
	first := th.verify("worker", "tp").ID

	s := th.secretOf("worker")
	if ok, owned := appliedBy(s, []string{"f:data", "f:token"}, []string{"f:data", "f:expiry"}, []string{"f:type"},
		[]string{"f:metadata", "f:ownerReferences"}, []string{"f:metadata", "f:labels", "f:" + LabelAccessToken},
		[]string{"f:metadata", "f:annotations", "f:" + AnnotationTokenID}); !ok {
		t.Errorf("the AccessToken's Secret is not applied by %s: %s", fieldOwner, owned)
	}
	var cm corev1.ConfigMap
	if err := env.Client.Get(ctx, th.key("tp-jwks"), &cm); err != nil {
		t.Fatal(err)
	}
	if ok, owned := appliedBy(&cm, []string{"f:data", "f:" + publication.JWKSKey}, []string{"f:data", "f:" + publication.RevokedKey},
		[]string{"f:metadata", "f:labels", "f:" + publication.LabelPolicy}); !ok {
		t.Errorf("the JWKS ConfigMap is not applied by %s: %s", fieldOwner, owned)
	}
	keysSecret := th.state("tp").secret
	if !slices.ContainsFunc(keysSecret.GetManagedFields(), func(m metav1.ManagedFieldsEntry) bool { return m.Manager == string(fieldOwner) }) {
		t.Errorf("the signing-key Secret is not written by %s: %v", fieldOwner, keysSecret.GetManagedFields())
	}

	// Hand edits of what the controller applies, and a key of someone else's.
	delete(s.Labels, LabelAccessToken)
	s.Annotations[AnnotationTokenID] = "forged"
	s.Data["note"] = []byte("mine")
	if err := env.Client.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	cm.Data[publication.JWKSKey] = `{"keys":[]}`
	if err := env.Client.Update(ctx, &cm); err != nil {
		t.Fatal(err)
	}
	th.settle("tp")
	th.mustReconcileToken("worker")
	s = th.secretOf("worker")
	if s.Labels[LabelAccessToken] != "worker" || s.Annotations[AnnotationTokenID] != first || string(s.Data["note"]) != "mine" {
		t.Errorf("after hand edits: labels %v annotations %v data keys %d", s.Labels, s.Annotations, len(s.Data))
	}
	if got := th.verify("worker", "tp").ID; got != first {
		t.Errorf("edits of labels and annotations re-minted the token (%s -> %s)", first, got)
	}
	if err := env.Client.Get(ctx, th.key("tp-jwks"), &cm); err != nil || cm.Data[publication.JWKSKey] != th.state("tp").policy.Status.Verification.JWKS {
		t.Errorf("the edited JWKS was not taken back: %v %q", err, cm.Data[publication.JWKSKey])
	}

	// Settled: more reconciles of both write nothing.
	before := th.versionsOf("worker") + "/" + th.versions("tp")
	for range 5 {
		th.mustReconcileToken("worker")
		if _, err := th.reconcileWith(th.r, "tp"); err != nil {
			t.Fatal(err)
		}
	}
	if after := th.versionsOf("worker") + "/" + th.versions("tp"); after != before {
		t.Errorf("settled objects were written: %s -> %s", before, after)
	}
}
