// Package node is the camera node agent: it watches the Cameras of its own node (a
// server-side field selector on spec.nodeName) and the TokenPolicies they name, runs one
// camera pipeline per Camera, keeps the node's verifiers current from the policies' status,
// and reports each Camera's status. It reads camfleet.io objects only: never a Secret or a
// ConfigMap.
package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/camfleet/camfleet/agent/camera"
	"github.com/camfleet/camfleet/agent/keyring"
	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/publication"
	"github.com/camfleet/camfleet/internal/scheme"
)

// +kubebuilder:rbac:groups=camfleet.io,resources=cameras,verbs=get;list;watch
// +kubebuilder:rbac:groups=camfleet.io,resources=cameras/status,verbs=patch
// +kubebuilder:rbac:groups=camfleet.io,resources=tokenpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// motionEventEvery rate-limits the MotionDetected Kubernetes Event per camera.
const motionEventEvery = time.Minute

// Options configure an agent.
type Options struct {
	// NodeName is the node whose Cameras this agent serves.
	NodeName string
	// DefaultPolicy governs Cameras that name no TokenPolicy (the controller's default).
	DefaultPolicy types.NamespacedName
	// Endpoint is the base URL of this agent's API as clients reach it, such as
	// http://10.0.0.21:8090; each Camera's status.endpoint is built on it.
	Endpoint string
	// StateDir keeps the last verification material loaded, for outages.
	StateDir string
	Clock    clock.WithTicker
	Log      logr.Logger
	// Metrics counts frames, events and clients; nil counts nothing.
	Metrics *Metrics
}

// Agent serves one node's cameras.
type Agent struct {
	opts     Options
	mgr      manager.Manager
	client   client.Client
	recorder events.EventRecorder
	Keys     *keyring.Keyring

	mu      sync.Mutex
	ctx     context.Context
	cameras map[types.NamespacedName]*running
}

// running is one camera the agent serves, with what it last wrote to its status.
type running struct {
	cam        *camera.Camera
	policy     types.NamespacedName
	generation int64
	lastStatus camv1.CameraStatus
	lastWrite  time.Time
	lastMotion time.Time
}

// New builds an agent against the API server of cfg.
func New(cfg *rest.Config, o Options) (*Agent, error) {
	if o.NodeName == "" {
		return nil, fmt.Errorf("a node name is required")
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme.New(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Logger:                 o.Log,
		// Several agents may share a process (tests, fleet simulations); names need not be unique.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			// Only this node's Cameras, selected by the API server.
			&camv1.Camera{}: {Field: fields.OneTermEqualSelector("spec.nodeName", o.NodeName)},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("agent manager: %w", err)
	}
	a := &Agent{opts: o, mgr: mgr, client: mgr.GetClient(), recorder: mgr.GetEventRecorder("camfleet-agent"),
		Keys: keyring.New(o.Clock), cameras: map[types.NamespacedName]*running{}}
	err = ctrl.NewControllerManagedBy(mgr).
		For(&camv1.Camera{}).
		Watches(&camv1.TokenPolicy{}, handler.EnqueueRequestsFromMapFunc(a.camerasOfPolicy)).
		Named("camera-agent").
		Complete(reconcile.Func(a.reconcile))
	if err != nil {
		return nil, fmt.Errorf("agent camera controller: %w", err)
	}
	if err := mgr.Add(manager.RunnableFunc(a.statusLoop)); err != nil {
		return nil, err
	}
	return a, nil
}

// Start runs the agent until ctx ends, then stops every camera.
func (a *Agent) Start(ctx context.Context) error {
	a.mu.Lock()
	a.ctx = ctx
	a.mu.Unlock()
	defer a.stopAll()
	return a.mgr.Start(ctx)
}

// Ready reports whether the agent has loaded its Cameras and their policies once.
func (a *Agent) Ready() error {
	if !a.mgr.GetCache().WaitForCacheSync(context.Background()) {
		return fmt.Errorf("the agent's caches have not synced")
	}
	return nil
}

// List implements api.Cameras.
func (a *Agent) List() []*camera.Camera {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]*camera.Camera, 0, len(a.cameras))
	for _, r := range a.cameras {
		out = append(out, r.cam)
	}
	return out
}

// Get implements api.Cameras.
func (a *Agent) Get(key types.NamespacedName) (*camera.Camera, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.cameras[key]
	if !ok {
		return nil, false
	}
	return r.cam, true
}

// PolicyOf implements api.Cameras.
func (a *Agent) PolicyOf(key types.NamespacedName) types.NamespacedName {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r, ok := a.cameras[key]; ok {
		return r.policy
	}
	return types.NamespacedName{}
}

// reconcile brings one Camera's pipeline in line with its spec: started, settings applied,
// source restarted, or stopped on delete and suspend. It also loads the Camera's policy.
func (a *Agent) reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	log := a.opts.Log.WithValues("camera", req.String())
	cam := &camv1.Camera{}
	err := a.client.Get(ctx, req.NamespacedName, cam)
	if apierrors.IsNotFound(err) || (err == nil && cam.Spec.NodeName != a.opts.NodeName) {
		a.remove(req.NamespacedName)
		log.Info("Camera gone; stopped serving it")
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("read camera %s: %w", req, err)
	}
	policy := publication.GoverningPolicy(cam, a.opts.DefaultPolicy)
	if err := a.loadPolicy(ctx, policy); err != nil {
		log.Error(err, "Cannot load the camera's TokenPolicy; its requests are refused", "tokenPolicy", policy.String())
	}

	if cam.Spec.Suspend {
		a.mu.Lock()
		r := a.cameras[req.NamespacedName]
		delete(a.cameras, req.NamespacedName)
		a.mu.Unlock()
		if r != nil {
			// Stopped outside the lock: the camera's goroutine calls back into the agent.
			r.cam.Stop()
			log.Info("Camera suspended; capture stopped")
		}
		a.suspended(ctx, cam)
		return reconcile.Result{}, nil
	}
	a.mu.Lock()
	r := a.cameras[req.NamespacedName]
	fresh := r == nil
	if fresh {
		r = &running{cam: camera.New(req.NamespacedName, cam.Spec, a.opts.Clock, log, a.hooks(req.NamespacedName))}
		a.cameras[req.NamespacedName] = r
	}
	changed := !fresh && r.generation != cam.Generation
	r.policy, r.generation = policy, cam.Generation
	runCtx := a.ctx
	a.mu.Unlock()
	switch {
	case fresh:
		r.cam.Start(runCtx)
		log.Info("Serving camera", "source", string(cam.Spec.Source.Type), "tokenPolicy", policy.String())
	case changed:
		r.cam.Apply(runCtx, cam.Spec)
	}
	a.prunePolicies()
	return reconcile.Result{}, nil
}

// suspended writes the status of a suspended camera once.
func (a *Agent) suspended(ctx context.Context, cam *camv1.Camera) {
	o := observed{generation: cam.Generation, suspended: true}
	next := desiredStatus(cam.Status, o, a.opts.Clock.Now())
	if sameConditions(cam.Status.Conditions, next.Conditions) && cam.Status.ObservedGeneration == next.ObservedGeneration {
		return
	}
	base := cam.DeepCopy()
	cam.Status = next
	if err := a.client.Status().Patch(ctx, cam, client.MergeFrom(base)); err != nil {
		a.opts.Log.Error(err, "Cannot write the status of a suspended camera", "camera", client.ObjectKeyFromObject(cam).String())
	}
}

func (a *Agent) remove(key types.NamespacedName) {
	a.mu.Lock()
	r := a.cameras[key]
	delete(a.cameras, key)
	a.mu.Unlock()
	if r != nil {
		r.cam.Stop()
	}
	a.prunePolicies()
}

func (a *Agent) stopAll() {
	a.mu.Lock()
	all := a.cameras
	a.cameras = map[types.NamespacedName]*running{}
	a.mu.Unlock()
	for _, r := range all {
		r.cam.Stop()
	}
}

// loadPolicy reads a policy from the cache and loads what its status publishes.
func (a *Agent) loadPolicy(ctx context.Context, key types.NamespacedName) error {
	if key.Name == "" {
		return fmt.Errorf("the camera names no TokenPolicy and the agent has no --default-token-policy")
	}
	p := &camv1.TokenPolicy{}
	if err := a.client.Get(ctx, key, p); err != nil {
		if apierrors.IsNotFound(err) {
			a.Keys.Remove(key)
		}
		return fmt.Errorf("read TokenPolicy %s: %w", key, err)
	}
	before, _, _ := a.Keys.Keys(key)
	if err := a.Keys.Update(p); err != nil {
		return err
	}
	after, active, _ := a.Keys.Keys(key)
	if !slices.Equal(before, after) {
		a.opts.Log.Info("Loaded verification keys", "tokenPolicy", key.String(), "keyIDs", after, "activeKeyID", active)
		a.saveState()
	}
	return nil
}

// prunePolicies forgets the policies no running camera names.
func (a *Agent) prunePolicies() {
	a.mu.Lock()
	used := map[types.NamespacedName]bool{}
	for _, r := range a.cameras {
		used[r.policy] = true
	}
	a.mu.Unlock()
	for _, p := range a.Keys.Snapshot() {
		if key := (types.NamespacedName{Namespace: p.Namespace, Name: p.Name}); !used[key] {
			a.Keys.Remove(key)
		}
	}
}

// camerasOfPolicy maps a TokenPolicy change to the node's Cameras it governs.
func (a *Agent) camerasOfPolicy(_ context.Context, o client.Object) []reconcile.Request {
	key := types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []reconcile.Request
	for k, r := range a.cameras {
		if r.policy == key {
			out = append(out, reconcile.Request{NamespacedName: k})
		}
	}
	return out
}

// hooks connect a camera to the agent's Events, metrics and status writes.
func (a *Agent) hooks(key types.NamespacedName) camera.Hooks {
	return camera.Hooks{
		MotionStarted: func(ev camera.Event) { a.motionStarted(key, ev) },
		Frame:         a.opts.Metrics.frame(key),
	}
}

// motionStarted emits a MotionDetected Event on the Camera, at most one per camera per
// motionEventEvery, and counts the event.
func (a *Agent) motionStarted(key types.NamespacedName, ev camera.Event) {
	a.opts.Metrics.motionEvent(key)
	now := a.opts.Clock.Now()
	a.mu.Lock()
	r := a.cameras[key]
	emit := r != nil && now.Sub(r.lastMotion) >= motionEventEvery
	if emit {
		r.lastMotion = now
	}
	a.mu.Unlock()
	if !emit {
		return
	}
	cam := &camv1.Camera{}
	if err := a.client.Get(context.Background(), key, cam); err != nil {
		return
	}
	a.recorder.Eventf(cam, nil, corev1.EventTypeNormal, "MotionDetected", "Detect",
		"motion on %s at %s, %d‰ of the frame changed (event %d)", key, ev.Start.Format(time.RFC3339), ev.PeakAreaPerMille, ev.ID)
}

// saveState keeps the verification material on the node's disk, written atomically, so a
// restarted agent can go on enforcing through a control-plane outage.
func (a *Agent) saveState() {
	if a.opts.StateDir == "" {
		return
	}
	if err := writeState(a.opts.StateDir, a.Keys.Snapshot()); err != nil {
		a.opts.Log.Error(err, "Cannot save the verification material", "stateDir", a.opts.StateDir)
	}
}

// StateFile is the file under --state-dir holding the last verification material.
const StateFile = "verification.json"

func writeState(dir string, policies []*camv1.TokenPolicy) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, err := stateJSON(policies)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, StateFile+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, StateFile))
}
