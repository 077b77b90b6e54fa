// Command kubectl-camfleet is camfleet's kubectl plugin: `kubectl camfleet status` shows the
// fleet, `rotate` rotates signing keys and follows the agents, `token` logs in, `snapshot`,
// `events` and `stream` reach a camera through its agent, and `verify` says why a token is
// refused. Installed on the PATH (or with krew), kubectl runs it as `kubectl camfleet`.
package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func main() {
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	args := os.Args[1:]
	// kubectl (1.26 and later) completes a plugin's arguments by running
	// kubectl_complete-<plugin>; a link of that name to this binary is all it needs.
	if filepath.Base(os.Args[0]) == "kubectl_complete-camfleet" {
		args = append([]string{"__complete"}, args...)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, streams, args)
	stop()
	os.Exit(code)
}
