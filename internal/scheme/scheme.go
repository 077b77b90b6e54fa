// Package scheme builds the runtime.Scheme every camfleet binary and test uses.
package scheme

import (
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
)

// New returns a scheme with the built-in kinds and camfleet's.
func New() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(camv1.AddToScheme(s))
	return s
}
