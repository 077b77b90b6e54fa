// Package node is the camera node agent: it watches the Cameras of its own node (a
// server-side field selector on spec.nodeName) and the TokenPolicies they name, runs one
// camera pipeline per Camera, keeps the node's verifiers current from the policies' status,
// and reports each Camera's status. It reads camfleet.io objects only: never a Secret or a
// ConfigMap.
package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/camfleet/camfleet/agent/camera"
	"github.com/camfleet/camfleet/agent/keyring"
	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/camerastatus"
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

	// stateMu guards where the verification material comes from and the state file.
	stateMu sync.Mutex
	source  string
	why     string
	written []byte
	// writtenFrom is what the state file was last encoded from (stateSource), so the agent
	// encodes it again only when that changed: every reconcile saves the state, and most,
	// woken by a Camera's status, change nothing the file holds.
	writtenFrom string
	// restored are the cameras of the state file, started by Start.
	restored []stateCamera

	// statusRounds counts the status loop's looks at the cameras, so a test that moves a fake
	// clock knows when the look it caused is done.
	statusRounds atomic.Uint64
}

// Where the keyring's verification material comes from: the API server (live), the state
// file under --state-dir (the API server has not answered since the agent started), or
// nowhere (no API server and no usable state file: every token is refused).
const (
	SourceAPIServer = "apiserver"
	SourceStateFile = "statefile"
	SourceNone      = "none"
)

// syncForever: the camera controller waits for its caches as long as the API server is
// unreachable, instead of failing the agent after controller-runtime's default two minutes,
// while the HTTP API enforces the state file.
const syncForever = 24 * 365 * time.Hour

// running is one camera the agent serves, with what it last wrote to its status.
type running struct {
	cam        *camera.Camera
	spec       camv1.CameraSpec
	policy     types.NamespacedName
	generation int64
	lastStatus camv1.CameraStatus
	lastWrite  time.Time
	lastMotion time.Time
	// keysSince is when the agent first held keys it has not reported yet (keyReportOffset);
	// zero while the keys it holds are the ones last reported.
	keysSince time.Time
}

// staticMapper maps the two kinds the agent reads, both namespaced, without asking the API
// server: controller-runtime's default mapper runs discovery when the manager is built, and an
// agent started during a control-plane outage must still come up and enforce its state file.
func staticMapper(*rest.Config, *http.Client) (meta.RESTMapper, error) {
	m := meta.NewDefaultRESTMapper([]schema.GroupVersion{camv1.GroupVersion})
	for _, kind := range []string{"Camera", "TokenPolicy"} {
		m.Add(camv1.GroupVersion.WithKind(kind), meta.RESTScopeNamespace)
	}
	return m, nil
}

// New builds an agent against the API server of cfg.
func New(cfg *rest.Config, o Options) (*Agent, error) {
	if o.NodeName == "" {
		return nil, fmt.Errorf("a node name is required")
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	// No gzip on the agent's connection: its watch events are a few KB, and the API server
	// compresses each watcher's stream on its own, so in a 1000-node fleet every TokenPolicy
	// update was compressed 1000 times there and inflated once on every Pi (a third of the
	// simulated agents' CPU in hack/fleetsim went to reading watch streams).
	cfg = rest.CopyConfig(cfg)
	cfg.DisableCompression = true
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme.New(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Logger:                 o.Log,
		MapperProvider:         staticMapper,
		// Several agents may share a process (tests, fleet simulations); names need not be unique.
		Controller: config.Controller{SkipNameValidation: ptr.To(true), CacheSyncTimeout: syncForever},
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			// Only this node's Cameras, selected by the API server.
			&camv1.Camera{}: {Field: fields.OneTermEqualSelector("spec.nodeName", o.NodeName)},
		},
			// The agent never reads managed fields; a Pi need not keep or copy them.
			DefaultTransform: cache.TransformStripManagedFields()},
	})
	if err != nil {
		return nil, fmt.Errorf("agent manager: %w", err)
	}
	a := &Agent{opts: o, mgr: mgr, client: mgr.GetClient(), recorder: mgr.GetEventRecorder("camfleet-agent"),
		Keys: keyring.New(o.Clock), cameras: map[types.NamespacedName]*running{}, source: SourceNone}
	// Before the manager starts: the keyring enforces the stored material from the first
	// request on, whether or not the API server ever answers.
	a.loadState()
	err = ctrl.NewControllerManagedBy(mgr).
		For(&camv1.Camera{}).
		Named("camera-agent").
		Complete(reconcile.Func(a.reconcile))
	if err != nil {
		return nil, fmt.Errorf("agent camera controller: %w", err)
	}
	// The keyring is the node's, not a camera's: a policy's new material is loaded once, by
	// its own reconcile, rather than by one reconcile per camera it governs.
	err = ctrl.NewControllerManagedBy(mgr).
		For(&camv1.TokenPolicy{}, builder.WithPredicates(materialChanged)).
		Named("policy-agent").
		Complete(reconcile.Func(a.reconcilePolicy))
	if err != nil {
		return nil, fmt.Errorf("agent policy controller: %w", err)
	}
	if err := mgr.Add(manager.RunnableFunc(a.statusLoop)); err != nil {
		return nil, err
	}
	if err := mgr.Add(manager.RunnableFunc(a.awaitAPIServer)); err != nil {
		return nil, err
	}
	return a, nil
}

// materialChanged passes TokenPolicy updates that change what the keyring enforces. During a
// fleet-wide rotation the policy's status moves with every agent's report ("412/1000"...);
// a reconcile of every node for each move would cost each node a policy read and a material
// comparison, for nothing.
var materialChanged = predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
	old, ok1 := e.ObjectOld.(*camv1.TokenPolicy)
	cur, ok2 := e.ObjectNew.(*camv1.TokenPolicy)
	return !ok1 || !ok2 || !keyring.SameMaterial(old, cur) || old.DeletionTimestamp.IsZero() != cur.DeletionTimestamp.IsZero()
}}

// Start runs the agent until ctx ends, then stops every camera.
func (a *Agent) Start(ctx context.Context) error {
	a.mu.Lock()
	a.ctx = ctx
	a.mu.Unlock()
	defer a.stopAll()
	a.startRestored(ctx)
	return a.mgr.Start(ctx)
}

// Ready reports whether the agent has verification material to enforce: live from the API
// server, or from the state file while the API server has not answered (a control-plane
// outage must not take the node's streams down). It never blocks; VerificationSource says
// which.
func (a *Agent) Ready() error {
	source, why := a.VerificationSource()
	if source == SourceNone {
		return fmt.Errorf("no verification material yet: %s", why)
	}
	return nil
}

// VerificationSource is where the keyring's material comes from (SourceAPIServer,
// SourceStateFile or SourceNone) and, for the last two, why.
func (a *Agent) VerificationSource() (source, why string) {
	a.stateMu.Lock()
	defer a.stateMu.Unlock()
	return a.source, a.why
}

// loadState loads the state file into the empty keyring. A missing or refused file leaves
// it empty, so every token is refused until the API server answers, and says why once.
func (a *Agent) loadState() {
	if a.opts.StateDir == "" {
		a.source, a.why = SourceNone, "no --state-dir; waiting for the API server"
		return
	}
	st, err := readState(a.opts.StateDir)
	if err == nil {
		for _, p := range st.Policies {
			if err = a.Keys.Update(p); err != nil {
				err = &StateError{Reason: StateInvalid, Err: err}
				break
			}
		}
	}
	if err != nil {
		for _, p := range a.Keys.Snapshot() {
			a.Keys.Remove(types.NamespacedName{Namespace: p.Namespace, Name: p.Name})
		}
		reason := StateCorrupt
		var se *StateError
		if errors.As(err, &se) {
			reason = se.Reason
		}
		a.opts.Metrics.stateLoadFailed(reason)
		a.source, a.why = SourceNone, err.Error()
		const msg = "No usable verification state: every token is refused until the API server answers"
		if reason == StateMissing {
			// A node's first start: worth a line, not an error.
			a.opts.Log.Info(msg, "reason", reason, "error", err.Error(), "stateDir", a.opts.StateDir)
		} else {
			a.opts.Log.Error(err, msg, "reason", reason, "stateDir", a.opts.StateDir)
		}
		return
	}
	a.source, a.why = SourceStateFile, "the API server has not answered since the agent started"
	a.restored = st.Cameras
	a.opts.Log.Info("Enforcing the verification material of the state file until the API server answers", "policies", len(st.Policies), "cameras", len(st.Cameras), "stateDir", a.opts.StateDir)
}

// startRestored runs the cameras of the state file until the API server says otherwise.
func (a *Agent) startRestored(ctx context.Context) {
	for _, c := range a.restored {
		key := types.NamespacedName{Namespace: c.Namespace, Name: c.Name}
		if c.Spec.NodeName != a.opts.NodeName || c.Spec.Suspend {
			continue
		}
		log := a.opts.Log.WithValues("camera", key.String())
		r := &running{cam: camera.New(key, c.Spec, a.opts.Clock, log, a.hooks(key)), spec: c.Spec, generation: c.Generation,
			policy: types.NamespacedName{Namespace: c.PolicyNamespace, Name: c.PolicyName}}
		a.mu.Lock()
		_, exists := a.cameras[key]
		if !exists {
			a.cameras[key] = r
		}
		a.mu.Unlock()
		if !exists {
			r.cam.Start(ctx)
			log.Info("Serving camera from the state file until the API server answers", "tokenPolicy", r.policy.String())
		}
	}
	a.restored = nil
}

// awaitAPIServer waits until the API server has answered (the Camera informer has listed
// once), then lets the live material replace the stored one: the reconciles load each
// camera's policy from the API server, and policies no camera names are dropped.
func (a *Agent) awaitAPIServer(ctx context.Context) error {
	if _, err := a.mgr.GetCache().GetInformer(ctx, &camv1.Camera{}); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	a.stateMu.Lock()
	was := a.source
	a.source, a.why = SourceAPIServer, ""
	a.stateMu.Unlock()
	if was != SourceAPIServer {
		a.opts.Log.Info("The API server answers; enforcing its verification material", "was", was)
	}
	// Cameras of the state file deleted or moved meanwhile get no reconcile: stop them here.
	// The cameras are taken before the list, so none a reconcile starts afterwards is lost.
	running := a.List()
	var list camv1.CameraList
	if err := a.client.List(ctx, &list); err == nil {
		live := map[types.NamespacedName]bool{}
		for _, c := range list.Items {
			if c.Spec.NodeName == a.opts.NodeName {
				live[types.NamespacedName{Namespace: c.Namespace, Name: c.Name}] = true
			}
		}
		for _, c := range running {
			if !live[c.Key] {
				a.remove(c.Key)
				a.opts.Log.Info("Camera of the state file gone; stopped serving it", "camera", c.Key.String())
			}
		}
	}
	a.prunePolicies()
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
	load := func() {
		if err := a.loadPolicy(ctx, policy); err != nil {
			log.Error(err, "Cannot load the camera's TokenPolicy; its requests are refused", "tokenPolicy", policy.String())
		}
	}

	if cam.Spec.Suspend {
		load()
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
		a.saveState()
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
	r.policy, r.generation, r.spec = policy, cam.Generation, *cam.Spec.DeepCopy()
	runCtx := a.ctx
	a.mu.Unlock()
	// Loaded once the camera counts as running under the policy: an update of the policy
	// from then on reaches reconcilePolicy, and one before is in the cache read here.
	load()
	switch {
	case fresh:
		r.cam.Start(runCtx)
		log.Info("Serving camera", "source", string(cam.Spec.Source.Type), "tokenPolicy", policy.String())
	case changed:
		r.cam.Apply(runCtx, cam.Spec)
	}
	a.prunePolicies()
	a.saveState()
	return reconcile.Result{}, nil
}

// suspended writes the status of a suspended camera once.
func (a *Agent) suspended(ctx context.Context, cam *camv1.Camera) {
	o := observed{generation: cam.Generation, suspended: true}
	now := a.opts.Clock.Now()
	next := desiredStatus(cam.Status, o, now)
	c := meta.FindStatusCondition(cam.Status.Conditions, camv1.ConditionCapturing)
	if c != nil && c.Reason == camv1.ReasonSuspended && c.ObservedGeneration == cam.Generation && len(cam.Status.LoadedKeyIDs) == 0 {
		return
	}
	hb := metav1.NewTime(now.Truncate(time.Second))
	next.LastHeartbeatTime = &hb
	if err := camerastatus.Apply(ctx, a.client, client.ObjectKeyFromObject(cam), next, camerastatus.Agent); client.IgnoreNotFound(err) != nil {
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
	a.saveState()
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

// loadPolicy reads a policy from the cache and loads what its status publishes; its caller
// saves the state.
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
	}
	return nil
}

// prunePolicies forgets the policies no running camera names. Its callers save the state.
func (a *Agent) prunePolicies() {
	a.mu.Lock()
	used := map[types.NamespacedName]bool{}
	for _, r := range a.cameras {
		used[r.policy] = true
	}
	a.mu.Unlock()
	for _, key := range a.Keys.Policies() {
		if !used[key] {
			a.Keys.Remove(key)
		}
	}
}

// reconcilePolicy loads a policy's material when a camera of this node runs under it; the
// camera reconciles load it when a camera starts or moves to it, and prunePolicies forgets it
// when none does any more.
func (a *Agent) reconcilePolicy(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	if !a.runsUnder(req.NamespacedName) {
		return reconcile.Result{}, nil
	}
	if err := a.loadPolicy(ctx, req.NamespacedName); err != nil {
		a.opts.Log.Error(err, "Cannot load a TokenPolicy of this node's cameras; their requests are refused", "tokenPolicy", req.String())
	}
	a.saveState()
	return reconcile.Result{}, nil
}

// runsUnder says whether a camera of this node runs under the policy.
func (a *Agent) runsUnder(policy types.NamespacedName) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.cameras {
		if r.policy == policy {
			return true
		}
	}
	return false
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
	// Off the frame goroutine: during an outage the cached Get waits for the API server.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), motionEventEvery)
		defer cancel()
		cam := &camv1.Camera{}
		if err := a.client.Get(ctx, key, cam); err != nil {
			return
		}
		a.recorder.Eventf(cam, nil, corev1.EventTypeNormal, "MotionDetected", "Detect",
			"motion on %s at %s, %d‰ of the frame changed (event %d)", key, ev.Start.Format(time.RFC3339), ev.PeakAreaPerMille, ev.ID)
	}()
}

// saveState keeps the verification material on the node's disk, written atomically with a
// checksum, so a restarted agent can go on enforcing through a control-plane outage. It
// writes only live material (never while enforcing the file it would rewrite) and only
// when it changed.
func (a *Agent) saveState() {
	if a.opts.StateDir == "" {
		return
	}
	// The version is read before the snapshot: a change in between makes the next call
	// encode again, never skip a change.
	version := a.Keys.Version()
	policies := a.Keys.Snapshot()
	slices.SortFunc(policies, func(x, y *camv1.TokenPolicy) int {
		return strings.Compare(x.Namespace+"/"+x.Name, y.Namespace+"/"+y.Name)
	})
	a.mu.Lock()
	cams := make([]stateCamera, 0, len(a.cameras))
	for k, r := range a.cameras {
		cams = append(cams, stateCamera{Namespace: k.Namespace, Name: k.Name, Generation: r.generation,
			PolicyNamespace: r.policy.Namespace, PolicyName: r.policy.Name, Spec: r.spec})
	}
	a.mu.Unlock()
	slices.SortFunc(cams, func(x, y stateCamera) int {
		return strings.Compare(x.Namespace+"/"+x.Name, y.Namespace+"/"+y.Name)
	})
	from := stateSource(version, cams)
	a.stateMu.Lock()
	same := from == a.writtenFrom
	a.stateMu.Unlock()
	if same {
		return
	}
	b, err := encodeState(policies, cams)
	if err != nil {
		a.opts.Log.Error(err, "Cannot encode the verification material")
		return
	}
	a.stateMu.Lock()
	defer a.stateMu.Unlock()
	if bytes.Equal(b, a.written) {
		a.writtenFrom = from
		return
	}
	if err := writeState(a.opts.StateDir, b); err != nil {
		a.opts.Log.Error(err, "Cannot save the verification material", "stateDir", a.opts.StateDir)
		return
	}
	a.written, a.writtenFrom = b, from
}

// stateSource names what a state file is encoded from: the keyring's version and each
// camera's generation and policy (a camera's spec changes only with its generation).
func stateSource(keys uint64, cams []stateCamera) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d", keys)
	for _, c := range cams {
		fmt.Fprintf(&b, ";%s/%s@%d:%s/%s", c.Namespace, c.Name, c.Generation, c.PolicyNamespace, c.PolicyName)
	}
	return b.String()
}
