package issuer

// The token service's RBAC, generated into config/rbac/token-service/role.yaml by
// `make manifests` and granted by the chart to the token service's own ServiceAccount. It is
// what New's caches and the session store use, and nothing more:
//   - TokenPolicies: list and watch, for the cache (never written: status is the controller's).
//   - Secrets: list and watch, for the caches of signing keys and password Secrets. Never
//     written. RBAC cannot narrow by label, so list means every Secret in the namespaces the
//     binding covers: --watch-namespaces with the chart's watchNamespaces confines that.
//   - ConfigMaps: get, create and update, for the `<policy>-sessions` refresh-session store
//     only; no list or watch, so none is enumerated. RBAC cannot narrow create by name, nor
//     get and update to names that are not known in advance.
//
// +kubebuilder:rbac:groups=camfleet.io,resources=tokenpolicies,verbs=list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=list;watch
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;create;update
