package main

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/fleet"
)

func newStatusCommand(o *options) *cobra.Command {
	var allNamespaces bool
	var output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the fleet on one screen: policies, their keys and agents, cameras, problems first",
		Long: `Show every TokenPolicy with its keys (state, age, next step), how many agents hold the
active key out of how many and which nodes lag, and every Camera with its node, source, frame
rate, last frame and last motion. Whatever needs attention comes first: policies and cameras
that are not Ready, cameras whose frames stopped, agents that have not loaded a key.

Policies in other namespaces that the listed cameras name are shown too.`,
		Example: `  # The fleet in the current namespace
  kubectl camfleet status

  # Every namespace, as JSON for a script
  kubectl camfleet status -A -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := outputFormat(output); err != nil {
				return err
			}
			return o.status(cmd.Context(), allNamespaces, output)
		},
	}
	cmd.Flags().BoolVarP(&allNamespaces, "all-namespaces", "A", false, "show the fleet in every namespace")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json or yaml (default: tables)")
	registerOutputCompletion(cmd, "json", "yaml")
	return cmd
}

func (o *options) status(ctx context.Context, allNamespaces bool, output string) error {
	c, err := o.kube()
	if err != nil {
		return err
	}
	ns, _, err := o.namespace()
	if err != nil {
		return err
	}
	var scope []client.ListOption
	if !allNamespaces {
		scope = append(scope, client.InNamespace(ns))
	}
	var policies camv1.TokenPolicyList
	if err := c.List(ctx, &policies, scope...); err != nil {
		return o.apiError(err)
	}
	var cameras camv1.CameraList
	if err := c.List(ctx, &cameras, scope...); err != nil {
		return o.apiError(err)
	}
	known := map[string]bool{}
	for _, p := range policies.Items {
		known[p.Namespace+"/"+p.Name] = true
	}
	// A camera may be governed by a policy in another namespace; its keys are judged by it.
	for _, cam := range cameras.Items {
		ref := cam.Status.TokenPolicy
		if ref == "" || known[ref] {
			continue
		}
		known[ref] = true
		key, ok := splitKey(ref)
		if !ok {
			continue
		}
		var p camv1.TokenPolicy
		if err := c.Get(ctx, key, &p); err != nil {
			if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
				continue // the camera's own Ready condition says so
			}
			return o.apiError(err)
		}
		policies.Items = append(policies.Items, p)
	}
	s := fleet.Summarize(policies.Items, cameras.Items, time.Now().UTC())
	if output != "" {
		return printStructured(o.streams.Out, output, s)
	}
	return fleet.WriteStatus(o.streams.Out, s, fleet.View{AllNamespaces: allNamespaces, Namespace: ns})
}

// splitKey reads "namespace/name".
func splitKey(s string) (types.NamespacedName, bool) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return types.NamespacedName{}, false
	}
	return types.NamespacedName{Namespace: ns, Name: name}, true
}

// objectKey reads a name given on the command line, "name" in the command's namespace or
// "namespace/name".
func objectKey(s, ns, what string) (types.NamespacedName, error) {
	if !strings.Contains(s, "/") {
		if s == "" {
			return types.NamespacedName{}, usagef("empty %s name", what)
		}
		return types.NamespacedName{Namespace: ns, Name: s}, nil
	}
	key, ok := splitKey(s)
	if !ok {
		return types.NamespacedName{}, usagef("%s %q: want NAME or NAMESPACE/NAME", what, s)
	}
	return key, nil
}
