// Package v1alpha1 holds the camfleet.io/v1alpha1 API: Camera, TokenPolicy and AccessToken.
//
// +kubebuilder:object:generate=true
// +groupName=camfleet.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version of every camfleet kind.
var GroupVersion = schema.GroupVersion{Group: "camfleet.io", Version: "v1alpha1"}

// schemeBuilder collects what AddToScheme adds; each kind's file registers its types in init.
// It is apimachinery's builder, so importing the API costs no controller-runtime dependency.
var schemeBuilder = runtime.NewSchemeBuilder(func(s *runtime.Scheme) error {
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
})

// AddToScheme adds the camfleet kinds to a runtime.Scheme.
func AddToScheme(s *runtime.Scheme) error { return schemeBuilder.AddToScheme(s) }

// register adds objs, the kinds of one file, to what AddToScheme adds.
func register(objs ...runtime.Object) {
	schemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(GroupVersion, objs...)
		return nil
	})
}
