package controllers

import (
	"bytes"
	"context"
	"encoding/json"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// fieldOwner is the field manager of every write the controller makes, so an object's
// managedFields show one camfleet owner whichever reconciler wrote it.
const fieldOwner = client.FieldOwner("camfleet-controller")

// controllerRef is the owner reference that makes owner the controller of an object, for an
// apply configuration (controllerutil.SetControllerReference takes only objects).
func controllerRef(gvk schema.GroupVersionKind, owner client.Object) *metav1ac.OwnerReferenceApplyConfiguration {
	return metav1ac.OwnerReference().WithAPIVersion(gvk.GroupVersion().String()).WithKind(gvk.Kind).
		WithName(owner.GetName()).WithUID(owner.GetUID()).WithController(true).WithBlockOwnerDeletion(true)
}

// appliedAlready reports whether owned, the fields the controller's field manager owns in a
// stored object (from ExtractSecret or ExtractConfigMap), already hold everything desired says.
// Someone else's edit of one of them moves its ownership away, so the two differ and the next
// apply takes it back; when they agree, a settled object costs no request at all.
func appliedAlready(owned, desired runtime.ApplyConfiguration) bool {
	a, errA := json.Marshal(owned)
	b, errB := json.Marshal(desired)
	return errA == nil && errB == nil && bytes.Equal(a, b)
}

// readThrough reads an object from the cache and, when the cache does not have it, from the
// API server: the cache holds only objects labelled as camfleet's, so only the API server can
// tell an absent object from one someone else made under the name the controller writes to.
// An absent object is (nil, nil); live may be nil when cached reads the API server itself.
func readThrough[T client.Object](ctx context.Context, cached, live client.Reader, key client.ObjectKey, obj T) (T, error) {
	var none T
	err := cached.Get(ctx, key, obj)
	if apierrors.IsNotFound(err) && live != nil {
		err = live.Get(ctx, key, obj)
	}
	switch {
	case apierrors.IsNotFound(err):
		return none, nil
	case err != nil:
		return none, err
	}
	return obj, nil
}
