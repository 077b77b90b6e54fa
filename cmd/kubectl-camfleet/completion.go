package main

import (
	"context"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// completionTimeout bounds the API call behind a completion: a shell must not hang on a
// cluster that does not answer.
const completionTimeout = 5 * time.Second

// completeNames completes the names of the objects of list's kind in the command's namespace,
// the way kubectl completes resource names, leaving out those already given. Cobra adds its own
// `completion` command for bash, zsh, fish and PowerShell scripts.
func completeNames(o *options, list client.ObjectList) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		ns, _, err := o.namespace()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		names := o.listNames(cmd.Context(), list.DeepCopyObject().(client.ObjectList), toComplete, client.InNamespace(ns))
		return slices.DeleteFunc(names, func(n string) bool { return slices.Contains(args, n) }), cobra.ShellCompDirectiveNoFileComp
	}
}

// completeOneName completes a command's single argument, and nothing once it is given.
func completeOneName(o *options, list client.ObjectList) cobra.CompletionFunc {
	names := completeNames(o, list)
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return names(cmd, nil, toComplete)
	}
}

func (o *options) listNames(ctx context.Context, list client.ObjectList, prefix string, opts ...client.ListOption) []cobra.Completion {
	c, err := o.kube()
	if err != nil {
		return nil
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, completionTimeout)
	defer cancel()
	if err := c.List(ctx, list, opts...); err != nil {
		return nil
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil
	}
	var out []cobra.Completion
	for _, it := range items {
		if obj, ok := it.(client.Object); ok && strings.HasPrefix(obj.GetName(), prefix) {
			out = append(out, obj.GetName())
		}
	}
	sort.Strings(out)
	return out
}

// registerGlobalCompletions completes kubectl's flags that name things: namespaces, and the
// kubeconfig's contexts, clusters and users.
func registerGlobalCompletions(root *cobra.Command, o *options) {
	_ = root.RegisterFlagCompletionFunc("namespace", func(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return o.listNames(cmd.Context(), &corev1.NamespaceList{}, toComplete), cobra.ShellCompDirectiveNoFileComp
	})
	fromKubeconfig := func(pick func(names map[string]bool, ctx, cluster, user string)) cobra.CompletionFunc {
		return func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			raw, err := o.config.ToRawKubeConfigLoader().RawConfig()
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			names := map[string]bool{}
			for name, c := range raw.Contexts {
				pick(names, name, c.Cluster, c.AuthInfo)
			}
			var out []cobra.Completion
			for n := range names {
				if strings.HasPrefix(n, toComplete) {
					out = append(out, n)
				}
			}
			sort.Strings(out)
			return out, cobra.ShellCompDirectiveNoFileComp
		}
	}
	_ = root.RegisterFlagCompletionFunc("context", fromKubeconfig(func(m map[string]bool, ctx, _, _ string) { m[ctx] = true }))
	_ = root.RegisterFlagCompletionFunc("cluster", fromKubeconfig(func(m map[string]bool, _, cl, _ string) { m[cl] = true }))
	_ = root.RegisterFlagCompletionFunc("user", fromKubeconfig(func(m map[string]bool, _, _, u string) { m[u] = true }))
}

// registerOutputCompletion completes -o with the formats a command prints.
func registerOutputCompletion(cmd *cobra.Command, formats ...string) {
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(formats, cobra.ShellCompDirectiveNoFileComp))
}
