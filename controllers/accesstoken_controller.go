package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
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

// accessTokenPolicyField indexes AccessTokens by the policy that signs them.
const accessTokenPolicyField = ".spec.policyName"

// accessTokenFieldOwner is the field manager of every Secret this controller writes.
const accessTokenFieldOwner = client.FieldOwner("camfleet-accesstoken")

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
	secret    *corev1.Secret
	// current is the token the Secret holds, or will hold once written; text is its JWS,
	// never logged nor reported.
	current *mintedToken
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
			var refused *specError
			if errors.As(err, &refused) {
				r.event(at, corev1.EventTypeWarning, refused.Reason, "Validate", "%s", refused.Message)
				return ctrl.Result{}, reconcile.TerminalError(err)
			}
			return ctrl.Result{}, err
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

// loadSecret reads the Secret and the token in it. A Secret this AccessToken does not own is
// never touched.
func (r *AccessTokenReconciler) loadSecret(ctx context.Context, run *tokenRun) error {
	run.secret = &corev1.Secret{}
	err := r.Get(ctx, client.ObjectKey{Namespace: run.at.Namespace, Name: run.at.Spec.SecretName}, run.secret)
	switch {
	case apierrors.IsNotFound(err):
		run.secret = nil
		return nil
	case err != nil:
		return fmt.Errorf("read Secret of %s: %w", client.ObjectKeyFromObject(run.at), err)
	case !metav1.IsControlledBy(run.secret, run.at):
		return foreignSecret(run.at)
	}
	if text := string(run.secret.Data[TokenKey]); text != "" {
		run.text = text
		run.current, _ = decodeToken(text)
	}
	return nil
}

func foreignSecret(at *camv1.AccessToken) error {
	return refuse(camv1.ReasonInvalidSpec, "spec.secretName: Secret %s exists and is not owned by this AccessToken; delete or rename it, or create an AccessToken with another secretName", at.Spec.SecretName)
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
		return err
	}
	text, err := token.Sign(c, trust.AccessType, run.key)
	if err != nil {
		return fmt.Errorf("sign token for %s: %w", client.ObjectKeyFromObject(run.at), err)
	}
	if _, err := run.verifier.Verify(text); err != nil {
		return fmt.Errorf("the token minted for %s with key %s fails the policy's verifier: %w", client.ObjectKeyFromObject(run.at), run.key.KeyID, err)
	}
	run.text = text
	run.current = &mintedToken{ID: c.ID, KeyID: run.key.KeyID, Type: trust.AccessType, Issuer: c.Issuer, Subject: c.Subject,
		Audience: c.Audience, Perms: c.Perms, IssuedAt: c.IssuedAt, Expiry: c.Expiry}
	return nil
}

// writeSecret writes the token, its expiry and its public facts to the Secret when any of
// them differ from what is stored, and reports a newly minted token once it is stored.
func (r *AccessTokenReconciler) writeSecret(ctx context.Context, run *tokenRun) error {
	at, t := run.at, run.current
	expiry := "never"
	if !t.Expiry.IsZero() {
		expiry = t.Expiry.Format(time.RFC3339)
	}
	labels := map[string]string{publication.LabelManagedBy: publication.ManagedBy, LabelAccessToken: labelValue(at.Name)}
	annotations := map[string]string{AnnotationTokenID: t.ID, AnnotationKeyID: t.KeyID, AnnotationInputsHash: run.want.InputsHash}
	s := run.secret
	if s == nil {
		s = &corev1.Secret{Type: AccessTokenSecretType}
		s.Name, s.Namespace = at.Spec.SecretName, at.Namespace
		if err := controllerutil.SetControllerReference(at, s, r.Scheme()); err != nil {
			return err
		}
	}
	changed := s.Data == nil || string(s.Data[TokenKey]) != run.text || string(s.Data[ExpiryKey]) != expiry
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	s.Data[TokenKey], s.Data[ExpiryKey] = []byte(run.text), []byte(expiry)
	for _, m := range []struct {
		dst *map[string]string
		src map[string]string
	}{{&s.Labels, labels}, {&s.Annotations, annotations}} {
		if *m.dst == nil {
			*m.dst = map[string]string{}
		}
		for k, v := range m.src {
			changed = changed || (*m.dst)[k] != v
			(*m.dst)[k] = v
		}
	}
	var err error
	switch {
	case run.secret == nil:
		if err = r.Create(ctx, s, accessTokenFieldOwner); apierrors.IsAlreadyExists(err) {
			// Only a Secret the controller's cache cannot see: one it does not own.
			return foreignSecret(at)
		}
	case changed:
		err = r.Update(ctx, s, accessTokenFieldOwner)
	}
	if err != nil {
		return fmt.Errorf("write Secret of %s: %w", client.ObjectKeyFromObject(at), err)
	}
	run.secret = s
	if run.reason == "" {
		return nil
	}
	log := ctrl.LoggerFrom(ctx)
	log.Info("Minted access token", "reason", run.reason, "tokenID", t.ID, "keyID", t.KeyID, "secret", s.Name)
	if run.reason == ReasonNoToken {
		r.event(at, corev1.EventTypeNormal, "Issued", "Mint", "issued token %s signed by key %s into Secret %s; %s", t.ID, t.KeyID, s.Name, expiresNote(t))
	} else {
		r.event(at, corev1.EventTypeNormal, "Renewed", "Mint", "renewed the token in Secret %s (%s: %s): token %s signed by key %s; %s", s.Name, run.reason, run.message, t.ID, t.KeyID, expiresNote(t))
	}
	return nil
}

func expiresNote(t *mintedToken) string {
	if t.Expiry.IsZero() {
		return "it never expires"
	}
	return "it expires at " + t.Expiry.Format(time.RFC3339)
}

// renewal is when the current token is next due.
func (run *tokenRun) renewal() time.Time {
	return renewalTime(run.current, run.want.RenewBefore)
}

// labelValue is name if it fits a label value, else a shortened name with a hash of the rest
// (names may be 253 characters, label values 63).
func labelValue(name string) string {
	if len(name) <= 63 {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return name[:52] + "-" + hex.EncodeToString(sum[:5])
}

func (r *AccessTokenReconciler) event(at *camv1.AccessToken, kind, reason, action, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(at, nil, kind, reason, action, note, args...)
	}
}

// SetupWithManager registers the reconciler: it watches AccessTokens, the Secrets they own
// (a hand edit or deletion is healed at once), and, for the AccessTokens naming it, each
// TokenPolicy and its JWKS ConfigMap (a key leaving the JWKS or a revocation re-mints at
// once; a policy that becomes ready unblocks the tokens waiting on it).
func (r *AccessTokenReconciler) SetupWithManager(mgr ctrl.Manager) error {
	err := mgr.GetFieldIndexer().IndexField(context.Background(), &camv1.AccessToken{}, accessTokenPolicyField, func(o client.Object) []string {
		if at, ok := o.(*camv1.AccessToken); ok {
			return []string{at.Spec.PolicyName}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("index AccessTokens by policy: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&camv1.AccessToken{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Owns(&corev1.Secret{}).
		Watches(&camv1.TokenPolicy{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			return r.tokensOfPolicy(ctx, o.GetNamespace(), o.GetName())
		})).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			policy := publication.PolicyOfConfigMap(o)
			if policy == "" {
				return nil
			}
			return r.tokensOfPolicy(ctx, o.GetNamespace(), policy)
		})).
		Named("accesstoken").
		Complete(r)
}

// tokensOfPolicy lists the AccessTokens a policy signs.
func (r *AccessTokenReconciler) tokensOfPolicy(ctx context.Context, ns, policy string) []reconcile.Request {
	var list camv1.AccessTokenList
	if err := r.List(ctx, &list, client.InNamespace(ns), client.MatchingFields{accessTokenPolicyField: policy}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Cannot list AccessTokens of a TokenPolicy", "tokenPolicy", ns+"/"+policy)
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return out
}
