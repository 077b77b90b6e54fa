// Package controllers holds camfleet's reconcilers: TokenPolicy (signing keys, rotation, JWKS
// publication), AccessToken (tokens kept fresh in Secrets) and Camera (validation, policy
// resolution, aggregation).
package controllers

// The controller's RBAC, generated into config/rbac/role.yaml by `make manifests`. It reads
// and writes its own kinds and their status, writes Events, and owns the Secrets and ConfigMaps
// that hold each policy's keys.
//
// +kubebuilder:rbac:groups=camfleet.io,resources=tokenpolicies;cameras;accesstokens,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=camfleet.io,resources=tokenpolicies/status;cameras/status;accesstokens/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=camfleet.io,resources=tokenpolicies/finalizers;accesstokens/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
