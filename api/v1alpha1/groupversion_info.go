// Package v1alpha1 holds the camfleet.io/v1alpha1 API: Camera, TokenPolicy and AccessToken.
//
// +kubebuilder:object:generate=true
// +groupName=camfleet.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the API group and version of every camfleet kind.
	GroupVersion = schema.GroupVersion{Group: "camfleet.io", Version: "v1alpha1"}

	// SchemeBuilder registers the camfleet kinds with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the camfleet kinds to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
