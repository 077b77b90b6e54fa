package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/keys"
	"github.com/camfleet/camfleet/internal/publication"
	"github.com/camfleet/camfleet/internal/token"
	"github.com/camfleet/camfleet/internal/trust"
)

// dependencyRetry is how soon an AccessToken whose policy is not ready looks again. The
// policy and JWKS watches usually wake it sooner.
const dependencyRetry = 30 * time.Second

// Field indexes of AccessTokens: by the policy that signs them, and by the Secret they write
// (immutable, so an event on a Secret finds its AccessToken even once the Secret is no
// longer owned by it).
const (
	accessTokenPolicyField = ".spec.policyName"
	accessTokenSecretField = ".spec.secretName"
)

// AccessTokenReconciler keeps each AccessToken's JWT fresh in the Secret it names, the way
// cert-manager keeps a certificate fresh: it mints with the policy's active key, renews
// renewBefore ahead of expiry, and re-mints at once when the token no longer matches its spec
// or its policy (a key left the JWKS, the token was revoked, the Secret was edited). Whether
// to mint is a pure function of what it reads and the clock (mustMint).
type AccessTokenReconciler struct {
	client.Client
	Recorder events.EventRecorder
	Clock    clock.PassiveClock
	// TokenServiceURL is the token service's external URL, the base of default issuers.
	TokenServiceURL string
	// APIReader reads a Secret the label-restricted cache does not hold, to tell an absent
	// Secret from someone else's; none is needed when Client reads the API server directly.
	APIReader client.Reader
}

// tokenRun is one reconcile of one AccessToken.
type tokenRun struct {
	at        *camv1.AccessToken
	policy    *camv1.TokenPolicy
	want      tokenRequest
	key       token.SigningKey
	published []string
	revoked   []string
	verifier  *token.Verifier
	// secret is the AccessToken's Secret as read, nil when it does not exist yet.
	secret *corev1.Secret
	// current is the token the Secret holds, or will hold once written; text is its JWS,
	// never logged nor reported.
	current *token.Unverified
	text    string
	// reason and message say why a new token was minted in this run; empty when none was.
	reason, message string
	waiting         string
	now             time.Time
}

// Reconcile brings one AccessToken's Secret to a valid token for its spec and schedules the
// next renewal.
func (r *AccessTokenReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	at := &camv1.AccessToken{}
	if err := r.Get(ctx, req.NamespacedName, at); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	base := at.DeepCopy()
	run := &tokenRun{at: at, now: r.Clock.Now().UTC().Truncate(time.Second)}
	defer func() {
		retErr = errors.Join(retErr, r.patchStatus(ctx, base, run, retErr))
	}()

	for _, phase := range []func(context.Context, *tokenRun) error{
		r.loadPolicy, r.resolve, r.loadKeys, r.loadSecret, r.mint, r.writeSecret,
	} {
		if err := phase(ctx, run); err != nil {
			return ctrl.Result{}, terminal(r.Recorder, at, err)
		}
		if run.waiting != "" {
			return ctrl.Result{RequeueAfter: dependencyRetry}, nil
		}
	}
	if next := run.renewal(); !next.IsZero() {
		res.RequeueAfter = max(next.Sub(run.now), time.Second)
	}
	return res, nil
}

// loadPolicy reads the policy that signs the token; a missing or unready one is waited for.
func (r *AccessTokenReconciler) loadPolicy(ctx context.Context, run *tokenRun) error {
	run.policy = &camv1.TokenPolicy{}
	err := r.Get(ctx, client.ObjectKey{Namespace: run.at.Namespace, Name: run.at.Spec.PolicyName}, run.policy)
	switch {
	case apierrors.IsNotFound(err):
		run.waiting = fmt.Sprintf("TokenPolicy %s does not exist", run.at.Spec.PolicyName)
	case err != nil:
		return fmt.Errorf("read TokenPolicy of %s: %w", client.ObjectKeyFromObject(run.at), err)
	case !meta.IsStatusConditionTrue(run.policy.Status.Conditions, camv1.ConditionReady):
		run.waiting = fmt.Sprintf("TokenPolicy %s is not Ready", run.policy.Name)
	}
	return nil
}

// loadKeys reads the policy's active key and what it publishes: the JWKS, the revoked token
// IDs, and from them the verifier every agent uses. A token is minted only with a key that is
// already published, so it verifies everywhere the moment it is written.
func (r *AccessTokenReconciler) loadKeys(ctx context.Context, run *tokenRun) error {
	p := run.policy
	sec, cm := &corev1.Secret{}, &corev1.ConfigMap{}
	for name, o := range map[string]client.Object{publication.SecretName(p.Name): sec, publication.ConfigMapName(p.Name): cm} {
		err := r.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: name}, o)
		if apierrors.IsNotFound(err) || (err == nil && !metav1.IsControlledBy(o, p)) {
			run.waiting = fmt.Sprintf("TokenPolicy %s has not published its keys yet", p.Name)
			return nil
		}
		if err != nil {
			return fmt.Errorf("read keys of TokenPolicy %s: %w", client.ObjectKeyFromObject(p), err)
		}
	}
	set, _ := keys.Decode(sec.Data, run.now)
	active := set.Active()
	pub := publication.FromConfigMap(cm)
	jwks, err := token.ParseJWKS(pub.JWKS)
	if active == nil || err != nil {
		run.waiting = fmt.Sprintf("TokenPolicy %s has no active key", p.Name)
		return nil
	}
	for _, k := range jwks.Keys() {
		run.published = append(run.published, k.KeyID)
	}
	if _, ok := jwks.Lookup(active.ID); !ok {
		run.waiting = fmt.Sprintf("the active key %s of TokenPolicy %s is not published yet", active.ID, p.Name)
		return nil
	}
	run.key = token.SigningKey{KeyID: active.ID, Algorithm: token.Algorithm(active.Algorithm), Signer: active.Signer()}
	var published []string
	if len(pub.Revoked) > 0 && json.Unmarshal(pub.Revoked, &published) != nil {
		run.waiting = fmt.Sprintf("TokenPolicy %s publishes an unreadable revocation list", p.Name)
		return nil
	}
	run.revoked = append(published, p.Spec.RevokedTokenIDs...)
	run.verifier, _, err = trust.Verifier(p, trust.Issuer(p, r.TokenServiceURL), pub, trust.AccessType, r.Clock)
	if err != nil {
		run.waiting = fmt.Sprintf("TokenPolicy %s's published keys cannot verify tokens: %v", p.Name, err)
	}
	return nil
}

// resolve checks the spec against the policy; what cannot be acted on stalls the AccessToken.
func (r *AccessTokenReconciler) resolve(_ context.Context, run *tokenRun) (err error) {
	run.want, err = resolveRequest(run.at, run.policy, r.TokenServiceURL)
	return err
}

// mint decides whether the token in the Secret must be replaced and, if so, signs a new one
// with the policy's active key. The new token must pass the same verifier the agents use
// before it is written.
func (r *AccessTokenReconciler) mint(ctx context.Context, run *tokenRun) error {
	in := renewalInput{
		Status: run.at.Status, SecretName: run.at.Spec.SecretName, SecretFound: run.secret != nil,
		HasToken: run.text != "", Token: run.current, Want: run.want,
		Published: run.published, ActiveKeyID: run.key.KeyID, Revoked: run.revoked, Now: run.now,
	}
	if run.secret != nil {
		in.InputsHash = run.secret.Annotations[AnnotationInputsHash]
	}
	if run.text != "" {
		if _, err := run.verifier.Verify(run.text); err != nil {
			in.Rejection = token.ReasonOf(err)
		}
	}
	var mint bool
	if run.reason, run.message, mint = mustMint(in); !mint {
		return nil
	}
	w := run.want
	c := token.Claims{Issuer: w.Issuer, Subject: w.Subject, Audience: w.Audience, IssuedAt: run.now, Perms: w.Perms}
	if w.TTL > 0 {
		c.Expiry = run.now.Add(w.TTL)
	}
	var err error
	if c.ID, err = token.NewID(); err != nil {
		return fmt.Errorf("token ID for %s: %w", client.ObjectKeyFromObject(run.at), err)
	}
	text, err := token.Sign(c, trust.AccessType, run.key)
	if err != nil {
		return fmt.Errorf("sign token for %s: %w", client.ObjectKeyFromObject(run.at), err)
	}
	if _, err := run.verifier.Verify(text); err != nil {
		return fmt.Errorf("the token minted for %s with key %s fails the policy's verifier: %w", client.ObjectKeyFromObject(run.at), run.key.KeyID, err)
	}
	run.text = text
	run.current = &token.Unverified{KeyID: run.key.KeyID, Type: trust.AccessType, Claims: c}
	return nil
}

// renewal is when the current token is next due.
func (run *tokenRun) renewal() time.Time {
	return renewalTime(run.current, run.want.RenewBefore)
}

func (r *AccessTokenReconciler) event(at *camv1.AccessToken, kind, reason, action, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(at, nil, kind, reason, action, note, args...)
	}
}

// SetupWithManager registers the reconciler. It watches AccessTokens; the Secrets they
// write, so that a Secret deleted, edited or taken over is noticed at once rather than at the
// next renewal; and, for the AccessTokens naming it, each TokenPolicy and its JWKS ConfigMap (a
// key leaving the JWKS or a revocation re-mints at once; a policy that becomes ready unblocks
// the tokens waiting on it).
//
// Secrets are mapped to AccessTokens by name through an index, not by owner reference, so a
// Secret that is no longer owned still finds its AccessToken. The cache holds only Secrets
// labelled as camfleet's: a take-over that drops the label reaches it as a delete of the
// Secret as it was, which is enough, as the reconcile then reads the name from the API server
// and finds it foreign.
func (r *AccessTokenReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.APIReader == nil {
		// Behind the manager's label-filtered cache only the API server can tell an absent
		// object from someone else's, and an apply to someone else's would take it over.
		r.APIReader = mgr.GetAPIReader()
	}
	for field, value := range map[string]func(*camv1.AccessToken) string{
		accessTokenPolicyField: func(at *camv1.AccessToken) string { return at.Spec.PolicyName },
		accessTokenSecretField: func(at *camv1.AccessToken) string { return at.Spec.SecretName },
	} {
		err := mgr.GetFieldIndexer().IndexField(context.Background(), &camv1.AccessToken{}, field, func(o client.Object) []string {
			if at, ok := o.(*camv1.AccessToken); ok {
				return []string{value(at)}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("index AccessTokens by %s: %w", field, err)
		}
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&camv1.AccessToken{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			return r.tokensBy(ctx, o.GetNamespace(), accessTokenSecretField, o.GetName())
		})).
		Watches(&camv1.TokenPolicy{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			return r.tokensBy(ctx, o.GetNamespace(), accessTokenPolicyField, o.GetName())
		})).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			policy := publication.PolicyOfConfigMap(o)
			if policy == "" {
				return nil
			}
			return r.tokensBy(ctx, o.GetNamespace(), accessTokenPolicyField, policy)
		})).
		Named("accesstoken").
		Complete(r)
}

// tokensBy lists the AccessTokens of a namespace whose indexed field has value.
func (r *AccessTokenReconciler) tokensBy(ctx context.Context, ns, field, value string) []reconcile.Request {
	var list camv1.AccessTokenList
	if err := r.List(ctx, &list, client.InNamespace(ns), client.MatchingFields{field: value}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Cannot list AccessTokens", "namespace", ns, "field", field, "value", value)
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return out
}
