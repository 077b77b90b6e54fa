package controllers

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/camfleet/camfleet/internal/publication"
)

// Options configure every reconciler the controller binary runs.
type Options struct {
	TokenServiceURL string
	DefaultPolicy   types.NamespacedName
	Clock           clock.Clock
}

// CacheOptions restrict the manager's Secret and ConfigMap caches to the objects camfleet
// owns: the controller never holds other Secrets in memory (the password Secrets users label
// for the token service live in a cache of their own, issuer.PasswordCache), and a cluster
// with thousands of ConfigMaps costs it nothing.
func CacheOptions() cache.Options {
	owned := labels.SelectorFromSet(labels.Set{publication.LabelManagedBy: publication.ManagedBy})
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.Secret{}:    {Label: owned},
		&corev1.ConfigMap{}: {Label: owned},
	}}
}

// Setup registers every reconciler with the manager, and the controller's metrics with reg
// (the binary passes controller-runtime's metrics.Registry, which the manager serves; a test
// passes a registry of its own, so it can run this exact wiring more than once).
func Setup(mgr ctrl.Manager, reg prometheus.Registerer, o Options) error {
	km, err := NewKeyMetrics(reg, o.Clock)
	if err != nil {
		return fmt.Errorf("register key metrics: %w", err)
	}
	tp := &TokenPolicyReconciler{
		Client:          mgr.GetClient(),
		Recorder:        mgr.GetEventRecorder("camfleet-controller"),
		Clock:           o.Clock,
		TokenServiceURL: o.TokenServiceURL,
		DefaultPolicy:   o.DefaultPolicy,
		Metrics:         km,
		APIReader:       mgr.GetAPIReader(),
	}
	if err := tp.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up the TokenPolicy controller: %w", err)
	}
	// After the TokenPolicy controller: the Camera controller reads the index it registers.
	cam := &CameraReconciler{
		Client:        mgr.GetClient(),
		Recorder:      mgr.GetEventRecorder("camfleet-controller"),
		Clock:         o.Clock,
		DefaultPolicy: o.DefaultPolicy,
	}
	if err := cam.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up the Camera controller: %w", err)
	}
	at := &AccessTokenReconciler{
		Client:          mgr.GetClient(),
		Recorder:        mgr.GetEventRecorder("camfleet-controller"),
		Clock:           o.Clock,
		TokenServiceURL: o.TokenServiceURL,
		APIReader:       mgr.GetAPIReader(),
	}
	if err := at.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up the AccessToken controller: %w", err)
	}
	return nil
}
