package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/keys"
	"github.com/camfleet/camfleet/internal/publication"
	"github.com/camfleet/camfleet/internal/trust"
)

// patchStatus computes the whole status from what the run found and did, and writes it in one
// patch, only when it changed: a settled policy costs no write.
func (r *TokenPolicyReconciler) patchStatus(ctx context.Context, base *camv1.TokenPolicy, run *policyRun, reconcileErr error) error {
	p := run.policy
	if run.set != nil && run.params.Period > 0 {
		setKeyStatus(&p.Status, run.set, run.params, func(kid string) keys.Agents { return agentsHolding(run.cameras, kid) })
		p.Status.SecretName, p.Status.ConfigMapName = publication.SecretName(p.Name), publication.ConfigMapName(p.Name)
		p.Status.Issuer = trust.Issuer(p, r.TokenServiceURL)
		if run.set.RotateRequest != "" {
			p.Status.LastRotateRequest = run.set.RotateRequest
		}
		// Published in status only once the ConfigMap holds the same keys, so status never
		// runs ahead of what other verifiers can read.
		if run.published {
			v, err := verification(run)
			if err != nil {
				return err
			}
			p.Status.Verification = v
		}
	}
	conds := policyConditions(p, run, reconcileErr)
	optional := []string{camv1.ConditionReconciling, camv1.ConditionStalled, camv1.ConditionAgentsInSync}
	// A reconcile that stopped before the session store was read leaves its condition as the
	// last read found it.
	if run.storeChecked {
		optional = append(optional, camv1.ConditionSessionStoreAvailable)
		if run.store != nil {
			conds = append(conds, *run.store)
		}
	}
	// Likewise for the external issuers, resolved on every reconcile that got that far.
	if run.external != nil {
		optional = append(optional, camv1.ConditionExternalIssuersTrusted)
		if c := externalIssuersCondition(run.external); c != nil {
			conds = append(conds, *c)
		}
	}
	applyConditions(&p.Status.Conditions, conds, p.Generation, run.now, optional...)
	if reconcileErr == nil {
		p.Status.ObservedGeneration = p.Generation
		if a := run.set.Active(); a != nil {
			r.Metrics.activeKey(p, a.Activates)
		}
	}
	return patchStatus(ctx, r.Client, p, base)
}

// maxLaggingNamed bounds the nodes a key's status names, as its schema does.
const maxLaggingNamed = 16

// setKeyStatus mirrors the key set into status: public facts only (kids, states, times), and
// for the pending and the active key which agents hold it, as holding reads the Cameras.
func setKeyStatus(st *camv1.TokenPolicyStatus, set *keys.Set, p keys.Params, holding func(kid string) keys.Agents) {
	t := func(v time.Time) *metav1.Time {
		if v.IsZero() {
			return nil
		}
		m := metav1.NewTime(v)
		return &m
	}
	st.Keys = nil
	st.AgentsTotal, st.AgentsLoaded, st.Agents = 0, 0, ""
	for _, k := range set.Keys {
		ks := camv1.KeyStatus{
			KeyID: k.ID, Algorithm: k.Algorithm, State: k.State, Created: metav1.NewTime(k.Created),
			Activates: t(k.Activates), Retires: t(k.Retires), RemoveAfter: t(keys.RemoveAfter(k, p)),
		}
		if k.State == camv1.KeyPending || k.State == camv1.KeyActive {
			a := holding(k.ID)
			loaded := a.Total - len(a.Lagging)
			ks.Agents = fmt.Sprintf("%d/%d", loaded, a.Total)
			ks.LaggingNodes = a.Lagging[:min(len(a.Lagging), maxLaggingNamed)]
			if k.State == camv1.KeyActive {
				st.AgentsTotal, st.AgentsLoaded, st.Agents = int32(a.Total), int32(loaded), ks.Agents
			}
		}
		st.Keys = append(st.Keys, ks)
	}
	st.ActiveKeyID, st.LastRotationTime = "", nil
	if a := set.Active(); a != nil {
		st.ActiveKeyID, st.LastRotationTime = a.ID, t(a.Activates)
	}
	st.NextRotationTime = t(keys.NextRotation(set, p))
}

func agentsHoldingActive(run *policyRun) keys.Agents {
	if a := run.set.Active(); a != nil {
		return agentsHolding(run.cameras, a.ID)
	}
	return keys.Agents{}
}

// policyConditions is the pure mapping from a run's outcome to conditions: Ready and
// KeysPublished always; Reconciling, Stalled and AgentsInSync only when abnormal.
func policyConditions(p *camv1.TokenPolicy, run *policyRun, err error) []metav1.Condition {
	var out []metav1.Condition
	if stalled, ok := stalledConditions(err); ok {
		return stalled
	}
	if err != nil {
		// The message stays generic: API errors can be long, and the Event and log say more.
		return append(out,
			cond(camv1.ConditionReady, metav1.ConditionFalse, "ReconcileFailed", "the last attempt to update the signing keys failed; retrying"),
			cond(camv1.ConditionReconciling, metav1.ConditionTrue, camv1.ReasonProgressing, "retrying after an error"))
	}
	active := run.set.Active()
	if active == nil {
		return append(out, cond(camv1.ConditionReady, metav1.ConditionFalse, "NoActiveKey", "no key signs yet"),
			cond(camv1.ConditionReconciling, metav1.ConditionTrue, camv1.ReasonProgressing, "generating the first key"))
	}
	published := fmt.Sprintf("%d keys published in ConfigMap %s; key %s signs", len(run.set.Keys), publication.ConfigMapName(p.Name), active.ID)
	out = append(out, cond(camv1.ConditionKeysPublished, metav1.ConditionTrue, "Published", published))
	if len(run.problems) > 0 {
		var msgs []string
		for _, pr := range run.problems {
			msgs = append(msgs, pr.Message)
		}
		out = append(out, cond(camv1.ConditionReady, metav1.ConditionFalse, run.problems[0].Reason, "repaired the signing keys: "+strings.Join(msgs, "; ")),
			cond(camv1.ConditionReconciling, metav1.ConditionTrue, camv1.ReasonProgressing, "repairing the signing-key Secret"))
		return out
	}
	out = append(out, cond(camv1.ConditionReady, metav1.ConditionTrue, camv1.ReasonSucceeded, published))
	if run.waiting.Reason == keys.ReasonWaitingForAgents {
		return append(out, cond(camv1.ConditionAgentsInSync, metav1.ConditionFalse, run.waiting.Reason, run.waiting.Message))
	}
	if lag := agentsHoldingActive(run); len(lag.Lagging) > 0 {
		msg := fmt.Sprintf("key %s signs, but %d of %d agents have not loaded it: %s", active.ID, len(lag.Lagging), lag.Total, keys.NodeList(lag.Lagging))
		out = append(out, cond(camv1.ConditionAgentsInSync, metav1.ConditionFalse, keys.ReasonAgentsLagging, msg))
	}
	return out
}

// sessionStoreCondition is SessionStoreAvailable for a policy whose <policy>-sessions
// ConfigMap is cm (nil when there is none, the usual case until the first login): False when
// that ConfigMap is not the store the token service made for the policy, which then answers
// every login and refresh with an error; nil, the condition absent, when all is well.
func sessionStoreCondition(p *camv1.TokenPolicy, cm *corev1.ConfigMap) *metav1.Condition {
	if cm == nil || publication.OwnsSessions(p, cm) {
		return nil
	}
	return &metav1.Condition{
		Type: camv1.ConditionSessionStoreAvailable, Status: metav1.ConditionFalse, Reason: camv1.ReasonForeignConfigMap,
		Message: fmt.Sprintf("ConfigMap %s is not this TokenPolicy's refresh-session store (no owner reference to the policy, "+
			"or not labelled as camfleet's), so every login and refresh fails; delete or rename it", cm.Name),
	}
}

// externalIssuersCondition is ExternalIssuersTrusted for the resolved external issuers: False,
// naming each one left out and why, when any is; nil, the condition absent, when all are
// trusted.
func externalIssuersCondition(external []camv1.ExternalIssuerStatus) *metav1.Condition {
	var out []string
	for _, e := range external {
		if e.Message != "" {
			out = append(out, fmt.Sprintf("%s: %s", e.Issuer, e.Message))
		}
	}
	if len(out) == 0 {
		return nil
	}
	return &metav1.Condition{
		Type: camv1.ConditionExternalIssuersTrusted, Status: metav1.ConditionFalse, Reason: camv1.ReasonExternalIssuerLeftOut,
		Message: fmt.Sprintf("%d of %d external issuers left out, their tokens refused: %s", len(out), len(external), strings.Join(out, "; ")),
	}
}
