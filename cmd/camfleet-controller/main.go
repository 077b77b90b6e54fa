// Command camfleet-controller runs camfleet's reconcilers: it keeps each TokenPolicy's signing
// keys in Secrets, rotates them, publishes their public halves, and keeps AccessTokens fresh.
package main

import (
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

	"github.com/camfleet/camfleet/controllers"
	"github.com/camfleet/camfleet/internal/cli"
	"github.com/camfleet/camfleet/internal/issuer"
	"github.com/camfleet/camfleet/internal/scheme"
)

const name = "camfleet-controller"

func main() {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "path to a kubeconfig; defaults to $KUBECONFIG, then the in-cluster config")
	metricsAddr := fs.String("metrics-bind-address", ":8080", "address the Prometheus metrics endpoint binds to; 0 turns it off")
	probeAddr := fs.String("health-probe-bind-address", ":8081", "address the /healthz and /readyz probes bind to")
	leaderElect := fs.Bool("leader-elect", false, "elect a leader so only one replica reconciles at a time")
	leaderNamespace := fs.String("leader-election-namespace", "", "namespace of the leader election Lease; the pod's namespace when unset")
	tokenServiceAddr := fs.String("token-service-bind-address", ":8082", "address the token service (login, refresh, JWKS, discovery) binds to; empty turns it off")
	tokenServiceURL := fs.String("token-service-url", "", "external URL of the token service, the base of every policy's default issuer")
	defaultPolicy := fs.String("default-token-policy", "", "TokenPolicy that governs Cameras naming none: namespace/name, or a name for the policy of that name in each Camera's own namespace")
	qps := fs.Float64("kube-api-qps", 50, "requests per second the controller may send the API server, on average; a fleet's start writes every Camera's status")
	burst := fs.Int("kube-api-burst", 100, "requests the controller may send the API server in a burst")
	watchNamespaces := fs.String("watch-namespaces", "", "comma-separated namespaces to reconcile and serve tokens for; empty is every namespace")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	cli.Parse(fs, "camfleet-controller keeps camera-fleet signing keys and tokens in Kubernetes.", os.Args[1:])

	defPolicy, namespaces, err := cli.Scope(*defaultPolicy, *watchNamespaces)
	if err != nil {
		cli.Fail(name, err)
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
	// controller-runtime's defaults (20, burst 30) held a 1000-node fleet's first status writes
	// back for minutes (hack/fleetsim); the API server's own fairness still protects it.
	cfg.QPS, cfg.Burst = float32(*qps), *burst
	cacheOpts := controllers.CacheOptions()
	cacheOpts.DefaultNamespaces = cli.NamespaceCaches(namespaces)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme.New(),
		Metrics:                 metricsserver.Options{BindAddress: *metricsAddr},
		HealthProbeBindAddress:  *probeAddr,
		LeaderElection:          *leaderElect,
		LeaderElectionID:        "camfleet-controller.camfleet.io",
		LeaderElectionNamespace: *leaderNamespace,
		Cache:                   cacheOpts,
	})
	if err != nil {
		cli.Fail(name, err)
	}
	err = controllers.Setup(mgr, metrics.Registry, controllers.Options{TokenServiceURL: *tokenServiceURL, DefaultPolicy: defPolicy, Clock: clock.RealClock{}})
	if err != nil {
		cli.Fail(name, err)
	}
	if *tokenServiceAddr != "" {
		if err := addTokenService(mgr, *tokenServiceAddr, issuer.Options{
			ServiceURL: *tokenServiceURL, DefaultPolicy: defPolicy, Namespaces: namespaces, Clock: clock.RealClock{}, Metrics: metrics.Registry,
		}); err != nil {
			cli.Fail(name, err)
		}
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		cli.Fail(name, err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		cli.Fail(name, err)
	}
	log.Info("Starting manager", "version", cli.Version, "metricsAddress", *metricsAddr, "probeAddress", *probeAddr,
		"tokenServiceAddress", *tokenServiceAddr, "leaderElection", *leaderElect, "watchNamespaces", namespaces)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "Manager stopped")
		os.Exit(1)
	}
}

// addTokenService runs the token service beside the reconcilers, on every replica, under the
// controller's identity. The chart runs it on its own instead (camfleet-token-service).
func addTokenService(mgr ctrl.Manager, addr string, o issuer.Options) error {
	svc, err := issuer.New(mgr, o)
	if err != nil {
		return err
	}
	if err := mgr.Add(issuer.Service{Addr: addr, Server: svc}); err != nil {
		return fmt.Errorf("add the token service: %w", err)
	}
	return nil
}
