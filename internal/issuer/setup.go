package issuer

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/cli"
	"github.com/camfleet/camfleet/internal/publication"
)

// Options configure a token service wired to a manager.
type Options struct {
	// ServiceURL is the service's external URL, the base of default issuers.
	ServiceURL string
	// DefaultPolicy answers /api/login and /api/refresh.
	DefaultPolicy types.NamespacedName
	// Namespaces confine the service and its caches; empty is every namespace.
	Namespaces []string
	Clock      clock.PassiveClock
	// Metrics is where the counter of refused tokens is registered; nil counts nothing.
	Metrics prometheus.Registerer
}

// New makes a token Server that reads from mgr's caches: policies and their signing-key
// Secrets from mgr's own cache (CacheOptions, or the controller's, which holds more), password
// Secrets from a PasswordCache it adds to mgr. It registers those informers now, so mgr waits
// for them to sync before the Server is served, and from then on only a request with a valid
// credential reaches the API server (to read and write its refresh session). The caller
// serves it, e.g. with Service.
func New(mgr manager.Manager, o Options) (*Server, error) {
	ctx := context.Background()
	for _, obj := range []client.Object{&camv1.TokenPolicy{}, &corev1.Secret{}} {
		if _, err := mgr.GetCache().GetInformer(ctx, obj); err != nil {
			return nil, fmt.Errorf("token service informer for %T: %w", obj, err)
		}
	}
	passwords, err := NewPasswordCache(mgr.GetConfig(), mgr.GetScheme(), o.Namespaces)
	if err != nil {
		return nil, err
	}
	if err := mgr.Add(passwords); err != nil {
		return nil, fmt.Errorf("add the password Secret cache: %w", err)
	}
	var rejections *prometheus.CounterVec
	if o.Metrics != nil {
		rejections = NewRejectionsMetric()
		if err := o.Metrics.Register(rejections); err != nil {
			var taken prometheus.AlreadyRegisteredError
			if !errors.As(err, &taken) {
				return nil, fmt.Errorf("register token service metrics: %w", err)
			}
			rejections = taken.ExistingCollector.(*prometheus.CounterVec)
		}
	}
	return &Server{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Passwords: passwords, Clock: o.Clock,
		ServiceURL: o.ServiceURL, DefaultPolicy: o.DefaultPolicy, Namespaces: o.Namespaces,
		Log: mgr.GetLogger().WithName("token-service"), Rejections: rejections,
	}, nil
}

// CacheOptions are the manager's caches for a token service that runs on its own: the
// TokenPolicies, and of Secrets only the policies' signing keys (labelled as camfleet's for a
// policy, which leaves out the Secrets that hold AccessTokens' tokens). Nothing else is
// cached, and reading anything else through the cache fails rather than starting an informer
// that the token service's RBAC does not allow.
func CacheOptions(namespaces []string) cache.Options {
	forPolicy, _ := labels.NewRequirement(publication.LabelPolicy, selection.Exists, nil) // cannot fail: a valid key, no values
	signingKeys := labels.SelectorFromSet(labels.Set{publication.LabelManagedBy: publication.ManagedBy}).Add(*forPolicy)
	return cache.Options{
		DefaultNamespaces: cli.NamespaceCaches(namespaces),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {Label: signingKeys},
		},
		ReaderFailOnMissingInformer: true,
		DefaultTransform:            cache.TransformStripManagedFields(),
	}
}
