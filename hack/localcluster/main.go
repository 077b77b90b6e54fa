// Command localcluster runs a local control plane (the kube-apiserver and etcd hack/tools.sh
// builds) with camfleet's CRDs installed, writes an admin kubeconfig, and runs until it is
// interrupted. `make demo` and the demo smoke test start it.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/camfleet/camfleet/internal/cli"
	"github.com/camfleet/camfleet/internal/testenv"
)

const name = "localcluster"

func main() {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "where to write the admin kubeconfig (required)")
	cli.Parse(fs, "localcluster runs a throwaway kube-apiserver and etcd with camfleet's CRDs.", os.Args[1:])
	if *kubeconfig == "" {
		cli.Fail(name, fmt.Errorf("--kubeconfig is required"))
	}
	env, err := testenv.Start()
	if err != nil {
		cli.Fail(name, err)
	}
	stop := func(code int) {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, name+": stop:", err)
		}
		os.Exit(code)
	}
	kc, err := os.ReadFile(env.Kubeconfig)
	if err == nil {
		err = os.WriteFile(*kubeconfig, kc, 0o600)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, name+": write kubeconfig:", err)
		stop(1)
	}
	fmt.Printf("ready: API server %s, kubeconfig %s\n", env.Config.Host, *kubeconfig)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	stop(0)
}
