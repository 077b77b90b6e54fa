package issuer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/cli"
)

// Service serves a token service Server on an address as a manager.Runnable. It runs on every
// replica, leader or not: any replica can sign, since the keys are read from the cluster.
type Service struct {
	Addr   string
	Server *Server
}

var _ manager.LeaderElectionRunnable = Service{}

// NeedLeaderElection is false: every replica serves logins.
func (Service) NeedLeaderElection() bool { return false }

// idleTimeout outlasts stock HTTP clients' own idle timeouts (Go's is 90 s), so a client drops
// an idle connection before the service does. Otherwise Go closes it after the 10 s read
// timeout, and a login a phone sends on a connection that is just closing fails with EOF and,
// being a POST, is not retried.
const idleTimeout = 2 * time.Minute

// Start serves until ctx ends, then drains requests for up to five seconds.
func (s Service) Start(ctx context.Context) error {
	l, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("token service listen on %s: %w", s.Addr, err)
	}
	srv := &http.Server{Handler: s.Server.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		IdleTimeout: idleTimeout}
	s.Server.Log.Info("Serving the token service", "address", l.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("token service: %w", err)
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("token service shutdown: %w", err)
		}
		return nil
	}
}

// PasswordCache is a cache of the Secrets labelled camfleet.io/password=true, the only
// Secrets the token service reads passwords from. The manager's own cache holds only the
// Secrets camfleet owns; this one lets logins read password hashes from memory without holding
// any other Secret. Added to a manager, it starts with the manager's caches, on every replica,
// and the token service serves only once it has synced.
type PasswordCache struct{ cache.Cache }

var _ manager.Runnable = PasswordCache{}

// GetCache makes the manager start it among its caches and wait for it to sync.
func (c PasswordCache) GetCache() cache.Cache { return c.Cache }

// NewPasswordCache makes a PasswordCache for cfg. It reads nothing but password Secrets, and
// only in namespaces (all when empty).
func NewPasswordCache(cfg *rest.Config, scheme *runtime.Scheme, namespaces []string) (PasswordCache, error) {
	marked := labels.SelectorFromSet(labels.Set{camv1.LabelPassword: camv1.LabelPasswordValue})
	c, err := cache.New(cfg, cache.Options{
		Scheme:            scheme,
		DefaultNamespaces: cli.NamespaceCaches(namespaces),
		ByObject:          map[client.Object]cache.ByObject{&corev1.Secret{}: {Label: marked}},
		// Anything but Secrets would start a cluster-wide informer on first read; refuse.
		ReaderFailOnMissingInformer: true,
		DefaultTransform:            cache.TransformStripManagedFields(),
	})
	if err != nil {
		return PasswordCache{}, fmt.Errorf("password Secret cache: %w", err)
	}
	// Registered now, so the manager waits for it to sync before the token service serves.
	if _, err := c.GetInformer(context.Background(), &corev1.Secret{}); err != nil {
		return PasswordCache{}, fmt.Errorf("password Secret informer: %w", err)
	}
	return PasswordCache{c}, nil
}
