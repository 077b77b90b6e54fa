// Command camfleet-token-service runs camfleet's token service on its own: login, refresh,
// the JWKS, OpenID Connect discovery and UserInfo for every TokenPolicy, and nothing else. It
// is the part phones reach, so it runs under an identity of its own that may read
// TokenPolicies and Secrets and write only ConfigMaps (its refresh sessions); it has no
// reconcilers and needs no leader: every replica serves.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/camfleet/camfleet/internal/cli"
	"github.com/camfleet/camfleet/internal/issuer"
	"github.com/camfleet/camfleet/internal/scheme"
)

const name = "camfleet-token-service"

func main() {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "path to a kubeconfig; defaults to $KUBECONFIG, then the in-cluster config")
	metricsAddr := fs.String("metrics-bind-address", ":8080", "address the Prometheus metrics endpoint binds to; 0 turns it off")
	probeAddr := fs.String("health-probe-bind-address", ":8081", "address the /healthz and /readyz probes bind to")
	addr := fs.String("token-service-bind-address", ":8082", "address the token service (login, refresh, JWKS, discovery) binds to")
	url := fs.String("token-service-url", "", "external URL of the token service, the base of every policy's default issuer")
	defaultPolicy := fs.String("default-token-policy", "", "namespace/name of the TokenPolicy that /api/login and /api/refresh answer for")
	watchNamespaces := fs.String("watch-namespaces", "", "comma-separated namespaces whose TokenPolicies are served; empty is every namespace")
	probe := fs.String("probe", "", "GET this URL, exit 0 if it answers 200 and 1 otherwise, and do nothing else (the chart's helm test, in an image without curl)")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	cli.Parse(fs, "camfleet-token-service serves logins, refreshes and the JWKS of camfleet's TokenPolicies.", os.Args[1:])
	if *probe != "" {
		if err := cli.Probe(*probe); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
			os.Exit(1)
		}
		fmt.Printf("%s answers 200\n", *probe)
		return
	}

	defPolicy, namespaces, err := cli.Scope(*defaultPolicy, *watchNamespaces)
	if err == nil && defPolicy.Name != "" && defPolicy.Namespace == "" {
		// A login names no camera, so a per-namespace default cannot answer it.
		err = fmt.Errorf("--default-token-policy %q: want namespace/name", *defaultPolicy)
	}
	if err != nil {
		cli.Fail(name, err)
	}
	if *addr == "" {
		cli.Fail(name, errors.New("--token-service-bind-address is empty: serving tokens is this binary's only job"))
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("setup")

	if *kubeconfig != "" {
		// controller-runtime reads --kubeconfig from the global flag set; ours is local.
		os.Setenv(clientcmd.RecommendedConfigPathEnvVar, *kubeconfig)
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		cli.Fail(name, err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme.New(),
		Metrics:                metricsserver.Options{BindAddress: *metricsAddr},
		HealthProbeBindAddress: *probeAddr,
		Cache:                  issuer.CacheOptions(namespaces),
	})
	if err != nil {
		cli.Fail(name, err)
	}
	svc, err := issuer.New(mgr, issuer.Options{
		ServiceURL: *url, DefaultPolicy: defPolicy, Namespaces: namespaces, Clock: clock.RealClock{}, Metrics: metrics.Registry,
	})
	if err != nil {
		cli.Fail(name, err)
	}
	if err := mgr.Add(issuer.Service{Addr: *addr, Server: svc}); err != nil {
		cli.Fail(name, err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		cli.Fail(name, err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		cli.Fail(name, err)
	}
	log.Info("Starting the token service", "version", cli.Version, "address", *addr, "metricsAddress", *metricsAddr,
		"probeAddress", *probeAddr, "watchNamespaces", namespaces)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "Token service stopped")
		os.Exit(1)
	}
}
