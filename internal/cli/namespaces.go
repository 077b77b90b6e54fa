package cli

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// ParseNamespaces reads a comma-separated list of namespaces, such as --watch-namespaces;
// empty is none (every namespace). Blanks around names are ignored; a name that cannot be a
// namespace is an error, so a typo fails at start instead of confining a binary to nothing.
func ParseNamespaces(flagName, s string) ([]string, error) {
	var out []string
	for _, ns := range strings.Split(s, ",") {
		ns = strings.TrimSpace(ns)
		if ns == "" {
			continue
		}
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return nil, fmt.Errorf("--%s: %q is not a namespace name: %s", flagName, ns, errs[0])
		}
		if !slices.Contains(out, ns) {
			out = append(out, ns)
		}
	}
	return out, nil
}

// PolicyIsWatched checks that a policy flag names a policy the binary can see: with
// --watch-namespaces, the policy's namespace must be one of them.
func PolicyIsWatched(flagName string, p types.NamespacedName, namespaces []string) error {
	// A bare name is each watched namespace's own policy: inside the scope by construction.
	if p.Name == "" || p.Namespace == "" || len(namespaces) == 0 || slices.Contains(namespaces, p.Namespace) {
		return nil
	}
	return fmt.Errorf("--%s %s: namespace %q is not in --watch-namespaces", flagName, p, p.Namespace)
}

// Scope reads the flags that confine a camfleet manager, --default-token-policy and
// --watch-namespaces, and checks that the one lies within the other.
func Scope(defaultPolicy, watchNamespaces string) (types.NamespacedName, []string, error) {
	p, err := ParsePolicy("default-token-policy", defaultPolicy)
	if err != nil {
		return types.NamespacedName{}, nil, err
	}
	namespaces, err := ParseNamespaces("watch-namespaces", watchNamespaces)
	if err != nil {
		return types.NamespacedName{}, nil, err
	}
	if err := PolicyIsWatched("default-token-policy", p, namespaces); err != nil {
		return types.NamespacedName{}, nil, err
	}
	return p, namespaces, nil
}

// NamespaceCaches confines a manager's cache to namespaces; nil (every namespace) when there
// are none.
func NamespaceCaches(namespaces []string) map[string]cache.Config {
	if len(namespaces) == 0 {
		return nil
	}
	m := make(map[string]cache.Config, len(namespaces))
	for _, ns := range namespaces {
		m[ns] = cache.Config{}
	}
	return m
}
