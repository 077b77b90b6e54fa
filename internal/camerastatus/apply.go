// Package camerastatus writes a Camera's status by server-side apply. Two field managers
// share each Camera's status, the controller and the agent serving the camera, and each
// applies only the fields it owns, so neither can overwrite or drop the other's.
package camerastatus

import (
	"context"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
)

// Field managers of a Camera's status.
const (
	// Controller owns tokenPolicy, observedGeneration and Ready, PolicyResolved, NodeResolved.
	Controller = "camfleet-controller"
	// Agent owns everything else. One name for every agent: a camera moved to another node is
	// taken over whole by its new agent.
	Agent = "camfleet-agent"
)

// Apply makes st the fields of the Camera's status that owner manages: the fields set in st
// become owner's, and those owner set before and st leaves out are removed. Apply goes
// through the status subresource, so it never creates a Camera.
func Apply(ctx context.Context, c client.Client, key types.NamespacedName, st camv1.CameraStatus, owner string) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode status of camera %s: %w", key, err)
	}
	var status map[string]any
	if err := json.Unmarshal(raw, &status); err != nil {
		return fmt.Errorf("encode status of camera %s: %w", key, err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{"status": status}}
	u.SetGroupVersionKind(camv1.GroupVersion.WithKind("Camera"))
	u.SetNamespace(key.Namespace)
	u.SetName(key.Name)
	if err := c.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(owner), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply status of camera %s as %s: %w", key, owner, err)
	}
	return nil
}

// SameConditions says whether two condition lists would tell a reader the same: the same
// types with the same status, reason, message and observed generation. Transition times are
// left out: they move only with a status, which is compared.
func SameConditions(a, b []metav1.Condition) bool {
	if len(a) != len(b) {
		return false
	}
	for _, c := range a {
		o := meta.FindStatusCondition(b, c.Type)
		if o == nil || o.Status != c.Status || o.Reason != c.Reason || o.Message != c.Message || o.ObservedGeneration != c.ObservedGeneration {
			return false
		}
	}
	return true
}
