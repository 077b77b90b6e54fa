package controllers

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/keys"
	"github.com/camfleet/camfleet/internal/publication"
)

// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch;create;update;patch

// TokenPolicyReconciler keeps each TokenPolicy's signing keys in a Secret it owns, publishes
// their public halves as a JWKS in a ConfigMap it owns, and moves keys through their
// lifecycle. Every decision is a pure function of the stored keys, the spec and the clock
// (package keys); this type only reads, writes and reports.
type TokenPolicyReconciler struct {
	client.Client
	Recorder events.EventRecorder
	Clock    clock.PassiveClock
	// Random feeds key generation; crypto/rand when nil.
	Random io.Reader
	// TokenServiceURL is the token service's external URL, the base of default issuers.
	TokenServiceURL string
	// DefaultPolicy governs Cameras that name no policy.
	DefaultPolicy types.NamespacedName
	Metrics       *KeyMetrics
	// APIReader reads what the label-restricted cache does not hold: external issuers' JWKS
	// ConfigMaps, and a Secret or ConfigMap someone else made under a name the policy writes
	// to. Client when nil.
	APIReader client.Reader

	// camerasIndexed is set once SetupWithManager has registered the Camera index; a
	// reconciler built by hand (in tests) lists Cameras without it.
	camerasIndexed bool
}

// externalRecheck is how often a policy with ConfigMap-published external keys is reread:
// those ConfigMaps are not ours, so no watch tells us they changed.
const externalRecheck = 5 * time.Minute

// foreignStoreRecheck is how often a policy whose session-store name is taken by someone
// else's ConfigMap looks again: that ConfigMap is outside the label-filtered cache, so no watch
// tells us it is gone, and every login fails until the condition saying so clears. Only such
// policies are rechecked, so a short interval costs little.
const foreignStoreRecheck = 15 * time.Second

// policyRun is one reconcile of one policy: what was read, decided and written, so the phases
// stay small and the status is computed once at the end.
type policyRun struct {
	policy *camv1.TokenPolicy
	params keys.Params
	set    *keys.Set
	secret *corev1.Secret
	// published is true once the JWKS ConfigMap holds the key set's public keys.
	published bool
	agents    keys.Agents
	cameras   []*camv1.Camera
	problems  []keys.Problem
	waiting   keys.Decision
	// external is each trusted external issuer as verifiers see it, keys resolved.
	external []camv1.ExternalIssuerStatus
	// storeChecked is true once the session store was read, and store is then its
	// SessionStoreAvailable condition (nil when all is well).
	storeChecked bool
	store        *metav1.Condition
	now          time.Time
}

// Reconcile moves one TokenPolicy's keys toward its spec and schedules the next deadline.
func (r *TokenPolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	policy := &camv1.TokenPolicy{}
	if err := r.Get(ctx, req.NamespacedName, policy); err != nil {
		if apierrors.IsNotFound(err) {
			r.Metrics.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	base := policy.DeepCopy()
	run := &policyRun{policy: policy, now: r.Clock.Now().UTC().Truncate(time.Second)}
	defer func() {
		retErr = errors.Join(retErr, r.patchStatus(ctx, base, run, retErr))
	}()

	for _, phase := range []func(context.Context, *policyRun) error{
		r.resolveParams, r.loadKeys, r.countAgents, r.evolveKeys, r.storeKeys, r.publishKeys, r.recordPublication, r.resolveExternal,
		r.checkSessionStore,
	} {
		if err := phase(ctx, run); err != nil {
			return ctrl.Result{}, terminal(r.Recorder, policy, err)
		}
	}
	if next := keys.NextDeadline(run.set, run.params, run.agents, run.now); !next.IsZero() {
		res.RequeueAfter = max(next.Sub(run.now), time.Second)
	}
	if hasConfigMapIssuer(policy) {
		recheckWithin(&res, externalRecheck)
	}
	if run.store != nil {
		recheckWithin(&res, foreignStoreRecheck)
	}
	return res, nil
}

// recheckWithin wakes the reconciler after d at the latest, for what no watch reports.
func recheckWithin(res *ctrl.Result, d time.Duration) {
	if res.RequeueAfter == 0 || res.RequeueAfter > d {
		res.RequeueAfter = d
	}
}

// resolveParams turns the spec into lifecycle parameters, refusing what cannot be acted on.
func (r *TokenPolicyReconciler) resolveParams(_ context.Context, run *policyRun) error {
	s := run.policy.Spec
	dur := func(d *metav1.Duration, def time.Duration) time.Duration {
		if d == nil {
			return def
		}
		return d.Duration
	}
	run.params = keys.Params{
		Algorithm:         s.Algorithm,
		RSABits:           int(s.RSAKeyBits),
		Period:            dur(s.Rotation.Period, 720*time.Hour),
		PublishAhead:      dur(s.Rotation.PublishAhead, 10*time.Minute),
		MaxActivationWait: dur(s.Rotation.MaxActivationWait, time.Hour),
		Retention:         dur(s.Tokens.MaxTTL, 720*time.Hour) + dur(s.Tokens.Leeway, 30*time.Second),
		RotateRequest:     run.policy.Annotations[camv1.AnnotationRotate],
		Revoke:            run.policy.Annotations[camv1.AnnotationRotateRevoke] == "true",
	}
	if run.params.Algorithm == "" {
		run.params.Algorithm = camv1.AlgorithmEdDSA
	}
	if run.params.Period <= run.params.PublishAhead {
		return refuse(camv1.ReasonInvalidSpec, "spec.rotation.period (%s) must be longer than spec.rotation.publishAhead (%s)", run.params.Period, run.params.PublishAhead)
	}
	if run.params.Algorithm == camv1.AlgorithmRS256 && run.params.RSABits != 0 && run.params.RSABits < keys.MinRSABits {
		return refuse(camv1.ReasonInvalidSpec, "spec.rsaKeyBits must be at least %d", keys.MinRSABits)
	}
	return nil
}

// loadKeys reads the policy's Secret. Whatever in it cannot be trusted is reported, never
// published, and healed by the phases that follow.
func (r *TokenPolicyReconciler) loadKeys(ctx context.Context, run *policyRun) error {
	var err error
	key := client.ObjectKey{Namespace: run.policy.Namespace, Name: publication.SecretName(run.policy.Name)}
	run.secret, err = readThrough(ctx, r.Client, r.APIReader, key, &corev1.Secret{})
	switch {
	case err != nil:
		return fmt.Errorf("read signing keys of %s: %w", client.ObjectKeyFromObject(run.policy), err)
	case run.secret == nil:
		run.set = &keys.Set{}
		if len(run.policy.Status.Keys) > 0 {
			run.problems = append(run.problems, keys.Problem{Reason: "SigningKeysLost", Message: fmt.Sprintf("the signing-key Secret %s was deleted; new keys replace the lost ones", publication.SecretName(run.policy.Name))})
			r.event(run.policy, corev1.EventTypeWarning, "SigningKeysLost", "LoadKeys", "%s", run.problems[0].Message)
		}
		return nil
	case !metav1.IsControlledBy(run.secret, run.policy):
		return refuse(camv1.ReasonInvalidSpec, "Secret %s exists and is not owned by this TokenPolicy; delete or rename it", run.secret.Name)
	}
	run.set, run.problems = keys.Decode(run.secret.Data, run.now)
	for _, p := range run.problems {
		r.event(run.policy, corev1.EventTypeWarning, p.Reason, "LoadKeys", "%s", p.Message)
	}
	return nil
}

// evolveKeys applies the lifecycle decisions: a new key if one is needed, activation of a
// pending key that may sign, removal of keys whose tokens have all expired.
func (r *TokenPolicyReconciler) evolveKeys(_ context.Context, run *policyRun) error {
	p, set := run.params, run.set
	if d, needed, immediate := keys.NewKey(set, p, run.now); needed {
		k, err := keys.Generate(p.Algorithm, p.RSABits, r.random(), run.now)
		if err != nil {
			return fmt.Errorf("generate key for %s: %w", client.ObjectKeyFromObject(run.policy), err)
		}
		if immediate {
			set.AddActive(k, d.Reason == keys.ReasonEmergencyRotation && p.Revoke, run.now)
			r.Metrics.rotated(run.policy, d.Reason)
			r.event(run.policy, corev1.EventTypeNormal, d.Reason, "Rotate", d.Message)
		} else if d.Reason == keys.ReasonRotationRequested {
			set.AddRequested(k, run.now)
			r.event(run.policy, corev1.EventTypeNormal, d.Reason, "Rotate", "%s; new key %s", d.Message, k.ID)
		} else {
			set.AddPending(k, p, run.now)
			r.event(run.policy, corev1.EventTypeNormal, "KeyCreated", "Rotate", "%s; new key %s", d.Message, k.ID)
		}
	}
	if p.RotateRequest != "" {
		set.RotateRequest = p.RotateRequest
	}
	if pk := set.Pending(); pk != nil {
		d, ready, _ := keys.Activation(pk, set.Active(), p, run.agents, run.now)
		if ready {
			old := set.Active()
			why := keys.ReasonRotationDue
			switch {
			case pk.Requested:
				why = keys.ReasonRotationRequested
			case old != nil && old.Algorithm != pk.Algorithm:
				why = keys.ReasonAlgorithmChanged
			}
			set.Activate(pk, run.now)
			r.Metrics.rotated(run.policy, why)
			kind := corev1.EventTypeNormal
			if d.Reason == keys.ReasonAgentsLagging {
				// Tokens of the new key are refused on the lagging nodes until they catch up.
				kind = corev1.EventTypeWarning
			}
			r.event(run.policy, kind, "KeyActivated", "Rotate", "%s", d.Message)
			if old != nil {
				r.event(run.policy, corev1.EventTypeNormal, "KeyRetired", "Rotate", "key %s stopped signing; it stays published until %s", old.ID, keys.RemoveAfter(old, p).Format(time.RFC3339))
			}
			if d.Reason == keys.ReasonAgentsLagging {
				run.waiting = d
			}
		} else {
			run.waiting = d
		}
	}
	for _, k := range set.Prune(p, run.now) {
		r.event(run.policy, corev1.EventTypeNormal, "KeyRemoved", "Rotate", "key %s left the JWKS: every token it signed has expired", k.ID)
	}
	return nil
}

// checkSessionStore reads the ConfigMap the token service keeps the policy's refresh sessions
// in. One the policy does not own blocks every login and refresh, but nothing the controller
// does, so it is reported (a condition and, when it appears, a Warning Event) and never
// stalls the policy. It runs last: a failed read must not hold up the keys. It reads through
// to the API server, since someone else's ConfigMap is not in the label-filtered cache.
func (r *TokenPolicyReconciler) checkSessionStore(ctx context.Context, run *policyRun) error {
	key := client.ObjectKey{Namespace: run.policy.Namespace, Name: publication.SessionsName(run.policy.Name)}
	cm, err := readThrough(ctx, r.Client, r.APIReader, key, &corev1.ConfigMap{})
	if err != nil {
		return fmt.Errorf("read session store of %s: %w", client.ObjectKeyFromObject(run.policy), err)
	}
	run.storeChecked, run.store = true, sessionStoreCondition(run.policy, cm)
	if c := run.store; c != nil && !meta.IsStatusConditionFalse(run.policy.Status.Conditions, c.Type) {
		r.event(run.policy, corev1.EventTypeWarning, c.Reason, "CheckSessionStore", "%s", c.Message)
	}
	return nil
}

func (r *TokenPolicyReconciler) random() io.Reader {
	if r.Random != nil {
		return r.Random
	}
	return rand.Reader
}

func (r *TokenPolicyReconciler) event(p *camv1.TokenPolicy, kind, reason, action, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(p, nil, kind, reason, action, note, args...)
	}
}

// cameraPolicyField indexes Cameras by the TokenPolicy that governs them, "namespace/name",
// so a policy finds its cameras without listing every Camera in the cluster.
const cameraPolicyField = ".governingPolicy"

// SetupWithManager registers the reconciler and the Camera index it reads: it watches its
// policies, the Secrets and ConfigMaps they own (a hand edit or deletion is healed at once),
// and the Cameras whose agents report the keys they hold (those reports only, not heartbeats).
func (r *TokenPolicyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.APIReader == nil {
		// Behind the manager's label-filtered cache only the API server can tell an absent
		// object from someone else's, and an apply to someone else's would take it over.
		r.APIReader = mgr.GetAPIReader()
	}
	err := mgr.GetFieldIndexer().IndexField(context.Background(), &camv1.Camera{}, cameraPolicyField, func(o client.Object) []string {
		if cam, ok := o.(*camv1.Camera); ok {
			return []string{r.governingPolicy(cam).String()}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("index Cameras by governing TokenPolicy: %w", err)
	}
	r.camerasIndexed = true
	return ctrl.NewControllerManagedBy(mgr).
		For(&camv1.TokenPolicy{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&corev1.Secret{}).
		Owns(&corev1.ConfigMap{}).
		Watches(&camv1.Camera{}, r.agentReports(), builder.WithPredicates(agentReportChanged)).
		Named("tokenpolicy").
		Complete(r)
}

// governingPolicy is the policy whose keys a Camera's agent must hold: the rule both the
// Camera index and the Camera watch use.
func (r *TokenPolicyReconciler) governingPolicy(cam *camv1.Camera) types.NamespacedName {
	return publication.GoverningPolicy(cam, r.DefaultPolicy)
}

// agentReportBatch is how long a policy waits after an agent's report before it counts its
// agents. In a fleet-wide rotation thousands of Cameras report the new key within seconds; each
// count is a status write that every agent's TokenPolicy watch receives, so counting once per
// batch instead of once per reconcile the reports happen to trigger spares the API server and
// every node most of that fan-out. AGENTS lags the reports by at most this much.
const agentReportBatch = time.Second

// agentReports enqueues the policy governing a Camera, old and new on an update (a Camera moving
// to another policy wakes both), after agentReportBatch: the work queue keeps one entry per
// policy, so the reports arriving meanwhile join it.
func (r *TokenPolicyReconciler) agentReports() handler.EventHandler {
	add := func(q workqueue.TypedRateLimitingInterface[reconcile.Request], objs ...client.Object) {
		for _, o := range objs {
			if cam, ok := o.(*camv1.Camera); ok {
				q.AddAfter(reconcile.Request{NamespacedName: r.governingPolicy(cam)}, agentReportBatch)
			}
		}
	}
	return handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(q, e.Object)
		},
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(q, e.ObjectOld, e.ObjectNew)
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(q, e.Object)
		},
		GenericFunc: func(_ context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(q, e.Object)
		},
	}
}
