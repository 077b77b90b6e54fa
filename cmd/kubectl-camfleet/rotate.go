package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/fleet"
)

// fieldManager names the plugin in the managed fields of what it writes.
const fieldManager = "kubectl-camfleet"

// pollEvery is how often rotate --wait reads the policies: often enough for a progress bar
// to feel live, cheap for the API server (one GET per policy).
const pollEvery = 500 * time.Millisecond

type rotateFlags struct {
	all, allNamespaces, revoke, wait bool
	timeout                          time.Duration
}

func newRotateCommand(o *options) *cobra.Command {
	var f rotateFlags
	cmd := &cobra.Command{
		Use:   "rotate POLICY... | --all",
		Short: "Rotate the signing keys of token policies, and follow the agents loading the new key",
		Long: `Ask the controller for a new signing key by setting the camfleet.io/rotate annotation
to a new value.

Without --revoke the new key is published at once and signs as soon as every agent serving the
policy's cameras has loaded it (or after the policy's maxActivationWait); tokens of the previous
keys keep working until they expire. With --revoke the new key signs at once and every previous
key leaves the JWKS, so every token they signed stops working as soon as the agents load the
new keys: use it when a key may have leaked.

With --wait the command follows the rotation: the new key's state and how many agents hold it
(a progress bar on a terminal, a line per change otherwise). It succeeds once the new key
signs and every agent holds it, and fails naming the lagging nodes when --timeout passes first.`,
		Example: `  # Rotate one policy and wait until every agent enforces the new key
  kubectl camfleet rotate home --wait

  # A key leaked: revoke every previous key at once
  kubectl camfleet rotate home --revoke --wait --timeout 2m

  # Rotate every policy of every namespace
  kubectl camfleet rotate --all -A`,
		ValidArgsFunction: completeNames(o, &camv1.TokenPolicyList{}),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case f.all && len(args) > 0:
				return usagef("name policies or give --all, not both")
			case !f.all && len(args) == 0:
				return usagef("name the token policy to rotate, or give --all")
			case f.allNamespaces && !f.all:
				return usagef("--all-namespaces goes with --all")
			case cmd.Flags().Changed("timeout") && !f.wait:
				return usagef("--timeout applies only with --wait")
			case f.timeout <= 0:
				return usagef("--timeout must be positive")
			}
			return o.rotate(cmd.Context(), args, f)
		},
	}
	cmd.Flags().BoolVar(&f.all, "all", false, "rotate every token policy of the namespace (with -A, of every namespace)")
	cmd.Flags().BoolVarP(&f.allNamespaces, "all-namespaces", "A", false, "with --all, every namespace")
	cmd.Flags().BoolVar(&f.revoke, "revoke", false, "revoke the previous keys at once: every token they signed stops working")
	cmd.Flags().BoolVar(&f.wait, "wait", false, "follow the rotation until the new key signs and every agent holds it")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 5*time.Minute, "with --wait, how long to wait before failing and naming the lagging nodes")
	return cmd
}

func (o *options) rotate(ctx context.Context, names []string, f rotateFlags) error {
	c, err := o.kube()
	if err != nil {
		return err
	}
	ns, _, err := o.namespace()
	if err != nil {
		return err
	}
	var targets []types.NamespacedName
	if f.all {
		var list camv1.TokenPolicyList
		var scope []client.ListOption
		where := "namespace " + ns
		if !f.allNamespaces {
			scope = append(scope, client.InNamespace(ns))
		} else {
			where = "any namespace"
		}
		if err := c.List(ctx, &list, scope...); err != nil {
			return o.apiError(err)
		}
		if len(list.Items) == 0 {
			return fmt.Errorf("no token policies in %s", where)
		}
		for _, p := range list.Items {
			targets = append(targets, types.NamespacedName{Namespace: p.Namespace, Name: p.Name})
		}
	} else {
		for _, n := range names {
			key, err := objectKey(n, ns, "token policy")
			if err != nil {
				return err
			}
			targets = append(targets, key)
		}
	}

	request := rotateValue(time.Now())
	for _, key := range targets {
		if err := requestRotation(ctx, c, key, request, f.revoke); err != nil {
			if apierrors.IsNotFound(err) {
				return fmt.Errorf("token policy %s not found in namespace %s", key.Name, key.Namespace)
			}
			return o.apiError(err)
		}
		how := ""
		if f.revoke {
			how = ", revoking the previous keys"
		}
		fmt.Fprintf(o.streams.Out, "tokenpolicy %s: rotation requested (%s=%s%s)\n", key, camv1.AnnotationRotate, request, how)
	}
	if !f.wait {
		return nil
	}
	return o.waitRotation(ctx, c, targets, request, f.timeout)
}

// rotateValue is a new camfleet.io/rotate value: every new value rotates exactly once, and a
// timestamp says when it was asked for.
func rotateValue(now time.Time) string {
	return now.UTC().Format("20060102T150405.000000Z")
}

// requestRotation sets the rotate annotation and sets or clears rotate-revoke in one merge
// patch, so a revoke left from an earlier rotation never turns this one into an emergency.
func requestRotation(ctx context.Context, c client.Client, key types.NamespacedName, request string, revoke bool) error {
	var revokeValue any // JSON null deletes the annotation
	if revoke {
		revokeValue = "true"
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{
		camv1.AnnotationRotate: request, camv1.AnnotationRotateRevoke: revokeValue,
	}}})
	if err != nil {
		return err
	}
	p := &camv1.TokenPolicy{}
	p.Namespace, p.Name = key.Namespace, key.Name
	return c.Patch(ctx, p, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(fieldManager))
}

// pollTimeout bounds one read of the policies, apart from the overall --timeout: a request cut
// by the overall deadline would fail with a transport error instead of the lagging nodes.
const pollTimeout = 15 * time.Second

// waitRotation follows each policy's rotation until every one is done, one is superseded, or
// timeout passes.
func (o *options) waitRotation(ctx context.Context, c client.Client, targets []types.NamespacedName, request string, timeout time.Duration) error {
	view := newProgressView(o.streams.Out, terminalWidth(o.streams.Out))
	kids := map[types.NamespacedName]string{}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	var progress []fleet.Progress
	for {
		pollCtx, cancel := context.WithTimeout(ctx, pollTimeout)
		next, err := rotationProgress(pollCtx, c, targets, request, kids)
		cancel()
		switch {
		case err != nil && ctx.Err() != nil:
			view.finish(progress)
			return fmt.Errorf("interrupted; the rotation goes on (kubectl camfleet status shows it): %s", stuck(progress))
		case apierrors.IsNotFound(err):
			view.finish(progress)
			return fmt.Errorf("a token policy was deleted while rotating: %s", apiMessage(err))
		case err != nil:
			view.finish(progress)
			return o.apiError(err)
		}
		progress = next
		view.update(progress)
		if finished(progress) {
			view.finish(progress)
			return superseded(progress)
		}
		select {
		case <-ctx.Done():
			view.finish(progress)
			return fmt.Errorf("interrupted; the rotation goes on (kubectl camfleet status shows it): %s", stuck(progress))
		case <-deadline.C:
			view.finish(progress)
			return fmt.Errorf("timed out after %s waiting for the rotation: %s", timeout, stuck(progress))
		case <-tick.C:
		}
	}
}

// rotationProgress reads each policy and remembers the key made for the request once seen.
func rotationProgress(ctx context.Context, c client.Client, targets []types.NamespacedName, request string, kids map[types.NamespacedName]string) ([]fleet.Progress, error) {
	out := make([]fleet.Progress, 0, len(targets))
	for _, key := range targets {
		var p camv1.TokenPolicy
		if err := c.Get(ctx, key, &p); err != nil {
			return nil, err
		}
		pr := fleet.RotationProgress(&p, request, kids[key])
		if kids[key] == "" && pr.KeyID != "" && pr.Phase != fleet.PhaseSuperseded {
			kids[key] = pr.KeyID
		}
		out = append(out, pr)
	}
	return out, nil
}

func finished(ps []fleet.Progress) bool {
	for _, p := range ps {
		if !p.Finished() {
			return false
		}
	}
	return len(ps) > 0
}

// superseded is the error for rotations another request overtook, nil when all are done.
func superseded(ps []fleet.Progress) error {
	var lines []string
	for _, p := range ps {
		if p.Phase == fleet.PhaseSuperseded {
			lines = append(lines, p.Policy+": "+p.Message)
		}
	}
	if len(lines) == 0 {
		return nil
	}
	return fmt.Errorf("rotation superseded: %s", strings.Join(lines, "; "))
}

// stuck names, for each unfinished policy, the key's state and the nodes that lag.
func stuck(ps []fleet.Progress) string {
	var out []string
	for _, p := range ps {
		if p.Phase != fleet.PhaseDone {
			out = append(out, p.Stuck())
		}
	}
	if len(out) == 0 {
		return "no policy read yet"
	}
	return strings.Join(out, "; ")
}
