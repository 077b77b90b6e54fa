package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/camfleet/camfleet/internal/cli"
	"github.com/camfleet/camfleet/internal/scheme"
)

// Exit codes: 0 when the command did what was asked, 1 when it could not (no cluster, no such
// camera, agent unreachable, token refused, rotation timed out), 2 for bad usage.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// options are what every command shares: the standard kubectl flags, the streams, and the
// clients built from them on first use.
type options struct {
	config  *genericclioptions.ConfigFlags
	streams genericiooptions.IOStreams

	restConfig *rest.Config
	client     client.Client
}

// run executes the plugin with args and returns its exit code; every error is one line on
// stderr.
func run(ctx context.Context, streams genericiooptions.IOStreams, args []string) int {
	// controller-runtime's client warns on stderr when no logger is set; a CLI has nothing to
	// log there.
	ctrllog.SetLogger(logr.Discard())
	o := &options{config: newConfigFlags(), streams: streams}
	root := newRoot(o)
	root.SetArgs(args)
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	var silent silentError
	if errors.As(err, &silent) {
		return silent.code
	}
	var usage usageError
	if errors.As(err, &usage) || isCobraUsage(err) {
		fmt.Fprintf(streams.ErrOut, "error: %s (see '%s --help')\n", oneLine(err.Error()), displayName(cmd))
		return exitUsage
	}
	fmt.Fprintf(streams.ErrOut, "error: %s\n", oneLine(err.Error()))
	return exitFailure
}

// newConfigFlags are kubectl's standard flags, less --token: here --token is the camera token
// a command sends to an agent (put API-server credentials in the kubeconfig instead).
func newConfigFlags() *genericclioptions.ConfigFlags {
	f := genericclioptions.NewConfigFlags(true)
	f.BearerToken = nil
	return f
}

func newRoot(o *options) *cobra.Command {
	root := &cobra.Command{
		Use:   "kubectl-camfleet",
		Short: "Operate a camfleet camera fleet: status, key rotation, tokens, snapshots, events, streams",
		Long: `kubectl camfleet operates a camfleet camera fleet from kubectl.

It reads Cameras and TokenPolicies through the Kubernetes API, reaches a camera's agent at the
endpoint the agent publishes in the Camera's status, and logs in at the token service that
issues the policy's tokens. It takes kubectl's standard flags (--kubeconfig, --context, -n, ...).`,
		Version:       cli.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl camfleet"},
		// The root alone does nothing; cobra then shows help.
	}
	root.SetVersionTemplate("kubectl-camfleet {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	o.config.AddFlags(root.PersistentFlags())
	registerGlobalCompletions(root, o)
	root.AddCommand(
		newStatusCommand(o),
		newRotateCommand(o),
		newTokenCommand(o),
		newSnapshotCommand(o),
		newEventsCommand(o),
		newStreamCommand(o),
		newVerifyCommand(o),
	)
	return root
}

// kube is the API client, built once from the standard flags.
func (o *options) kube() (client.Client, error) {
	if o.client != nil {
		return o.client, nil
	}
	cfg, err := o.rest()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return nil, o.apiError(err)
	}
	o.client = c
	return c, nil
}

func (o *options) rest() (*rest.Config, error) {
	if o.restConfig != nil {
		return o.restConfig, nil
	}
	// Without a kubeconfig client-go falls back to http://localhost:8080, and the user would
	// read about a refused connection to a server they never named.
	if raw, err := o.config.ToRawKubeConfigLoader().RawConfig(); err == nil && len(raw.Clusters) == 0 &&
		*o.config.APIServer == "" && os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
		return nil, errors.New("no cluster configured: no kubeconfig found (set KUBECONFIG or pass --kubeconfig)")
	}
	cfg, err := o.config.ToRESTConfig()
	if err != nil {
		return nil, kubeconfigError(err)
	}
	// Polling a rotation asks every half second; client-go's default limit (5/s) would make
	// it wait behind its own requests on a fleet of many policies.
	cfg.QPS, cfg.Burst = 20, 40
	cfg.UserAgent = "kubectl-camfleet/" + cli.Version
	o.restConfig = cfg
	return cfg, nil
}

// namespace is the namespace the command works in (-n, else the kubeconfig context's), and
// whether the user named it.
func (o *options) namespace() (string, bool, error) {
	ns, explicit, err := o.config.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return "", false, kubeconfigError(err)
	}
	return ns, explicit, nil
}

// usageError is a command used wrongly: exit code 2, with a pointer to --help.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// silentError ends the command with code after it has said everything on its own output.
type silentError struct{ code int }

func (e silentError) Error() string { return fmt.Sprintf("exit code %d", e.code) }

// isCobraUsage recognises the usage errors cobra makes itself (unknown commands, argument
// counts of its own validators).
func isCobraUsage(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "unknown command") || strings.HasPrefix(s, "accepts ") || strings.HasPrefix(s, "requires ")
}

func displayName(cmd *cobra.Command) string {
	if cmd == nil {
		return "kubectl camfleet"
	}
	return cmd.CommandPath()
}

// oneLine keeps an error to one line: some server messages carry line breaks.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// exactlyOne is an argument validator that says what the one argument is.
func exactlyOne(what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		switch {
		case len(args) == 0:
			return usagef("name the %s", what)
		case len(args) > 1:
			return usagef("one %s only, got %d arguments: %s", what, len(args), strings.Join(args, " "))
		}
		return nil
	}
}

// outputFormat checks -o for the commands that print objects: empty (for people), json or yaml.
func outputFormat(o string) error {
	switch o {
	case "", "json", "yaml":
		return nil
	}
	return usagef("--output %q: want json or yaml", o)
}
