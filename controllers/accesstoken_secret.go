package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/publication"
	"github.com/camfleet/camfleet/internal/token"
)

// Data keys, type, labels and annotations of the Secret an AccessToken writes.
const (
	// AccessTokenSecretType marks the Secrets that hold an AccessToken's JWT.
	AccessTokenSecretType = "camfleet.io/access-token"
	// TokenKey is the Secret data key of the JWT.
	TokenKey = "token"
	// ExpiryKey is the Secret data key of the token's expiry, RFC 3339, or "never".
	ExpiryKey = "expiry"
	// LabelAccessToken names the AccessToken that owns a Secret.
	LabelAccessToken = "camfleet.io/access-token"
	// AnnotationTokenID and AnnotationKeyID are the jti and kid of the token in the Secret:
	// public facts, so a reader need not decode the token to revoke it.
	AnnotationTokenID = "camfleet.io/token-id"
	AnnotationKeyID   = "camfleet.io/key-id"
	// AnnotationInputsHash is the hash of what the token was minted for (policy, subject,
	// roles, lifetime), so a spec change re-mints it.
	AnnotationInputsHash = "camfleet.io/inputs-hash"
)

// loadSecret reads the Secret and the token in it. A Secret this AccessToken does not own is
// never touched: the AccessToken stalls until the user frees the name.
func (r *AccessTokenReconciler) loadSecret(ctx context.Context, run *tokenRun) error {
	key := client.ObjectKey{Namespace: run.at.Namespace, Name: run.at.Spec.SecretName}
	s, err := readThrough(ctx, r.Client, r.APIReader, key, &corev1.Secret{})
	switch {
	case err != nil:
		return fmt.Errorf("read Secret of %s: %w", client.ObjectKeyFromObject(run.at), err)
	case s == nil:
		return nil
	case !metav1.IsControlledBy(s, run.at):
		return foreignSecret(run.at)
	}
	run.secret = s
	if text := string(s.Data[TokenKey]); text != "" {
		run.text = text
		if t, err := token.ReadUnverified(text); err == nil {
			run.current = &t
		}
	}
	return nil
}

func foreignSecret(at *camv1.AccessToken) error {
	return refuse(camv1.ReasonInvalidSpec, "spec.secretName: Secret %s exists and is not owned by this AccessToken; delete or rename it, or create an AccessToken with another secretName", at.Spec.SecretName)
}

// writeSecret applies the Secret: the token, its expiry and its public facts, server-side as
// the controller's field manager, so a hand edit of any of them is taken back. The write is
// conditional on the resourceVersion read, as an Update would be: a Secret that changed
// since (taken over, or renewed by a newer reconcile) is read again rather than overwritten.
// A newly minted token is reported once it is stored.
func (r *AccessTokenReconciler) writeSecret(ctx context.Context, run *tokenRun) error {
	at, t := run.at, run.current
	want := tokenSecret(at, t, run.text, run.want.InputsHash)
	if run.secret != nil {
		if owned, err := corev1ac.ExtractSecret(run.secret, string(fieldOwner)); err == nil && appliedAlready(owned, want) {
			return nil
		}
		want.WithResourceVersion(run.secret.ResourceVersion)
	}
	if err := r.Apply(ctx, want, fieldOwner, client.ForceOwnership); err != nil {
		return fmt.Errorf("write Secret of %s: %w", client.ObjectKeyFromObject(at), err)
	}
	if run.reason == "" {
		return nil
	}
	name := at.Spec.SecretName
	ctrl.LoggerFrom(ctx).Info("Minted access token", "reason", run.reason, "tokenID", t.ID, "keyID", t.KeyID, "secret", name)
	if run.reason == ReasonNoToken {
		r.event(at, corev1.EventTypeNormal, "Issued", "Mint", "issued token %s signed by key %s into Secret %s; %s", t.ID, t.KeyID, name, expiresNote(t))
	} else {
		r.event(at, corev1.EventTypeNormal, "Renewed", "Mint", "renewed the token in Secret %s (%s: %s): token %s signed by key %s; %s", name, run.reason, run.message, t.ID, t.KeyID, expiresNote(t))
	}
	return nil
}

// tokenSecret is the whole Secret an AccessToken keeps: everything the controller applies.
func tokenSecret(at *camv1.AccessToken, t *token.Unverified, text, inputsHash string) *corev1ac.SecretApplyConfiguration {
	expiry := "never"
	if !t.Expiry.IsZero() {
		expiry = t.Expiry.Format(time.RFC3339)
	}
	return corev1ac.Secret(at.Spec.SecretName, at.Namespace).
		WithType(AccessTokenSecretType).
		WithOwnerReferences(controllerRef(camv1.GroupVersion.WithKind("AccessToken"), at)).
		WithLabels(map[string]string{publication.LabelManagedBy: publication.ManagedBy, LabelAccessToken: labelValue(at.Name)}).
		WithAnnotations(map[string]string{AnnotationTokenID: t.ID, AnnotationKeyID: t.KeyID, AnnotationInputsHash: inputsHash}).
		WithData(map[string][]byte{TokenKey: []byte(text), ExpiryKey: []byte(expiry)})
}

func expiresNote(t *token.Unverified) string {
	if t.Expiry.IsZero() {
		return "it never expires"
	}
	return "it expires at " + t.Expiry.Format(time.RFC3339)
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
