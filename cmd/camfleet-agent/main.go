// Command camfleet-agent runs on every camera node: it captures the node's Cameras, detects
// motion, and serves snapshots, MJPEG streams and motion events to requests carrying a valid
// token, verified against the public keys its TokenPolicies publish.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/camfleet/camfleet/agent/api"
	"github.com/camfleet/camfleet/agent/node"
	"github.com/camfleet/camfleet/internal/cli"
)

const name = "camfleet-agent"

func main() {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "path to a kubeconfig; defaults to $KUBECONFIG, then the in-cluster config")
	nodeName := fs.String("node-name", os.Getenv("NODE_NAME"), "the node whose Cameras this agent serves (default $NODE_NAME)")
	listen := fs.String("listen-address", ":8090", "address the agent's HTTP API binds to")
	advertise := fs.String("advertise-url", "", "base URL clients reach this agent at, written to each Camera's status.endpoint (default: http(s)://$NODE_IP or the host name, and the listen port)")
	tokenService := fs.String("token-service-url", "", "URL of the controller's token service, where /api/login and /api/refresh are forwarded")
	defaultPolicy := fs.String("default-token-policy", "", "TokenPolicy governing Cameras that name none, as namespace/name, or a name for the policy of that name in each Camera's namespace (the controller's --default-token-policy)")
	stateDir := fs.String("state-dir", "/var/lib/camfleet", "directory keeping the last verification material loaded, for control-plane outages")
	tlsCert := fs.String("tls-cert-file", "", "serve HTTPS with this certificate (PEM); needs --tls-key-file")
	tlsKey := fs.String("tls-key-file", "", "private key of --tls-cert-file (PEM)")
	pprofAddr := fs.String("pprof-address", "", "serve Go's /debug/pprof profiles on this address, such as 127.0.0.1:6060 (off when empty; never expose it beyond the node)")
	prepare := fs.String("prepare-state-dir", "", "create --state-dir owned by this uid:gid, such as 65532:65532, and exit: run as root in an init container, so the agent itself runs as that non-root user on a hostPath state directory")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	cli.Parse(fs, "camfleet-agent serves a node's cameras behind tokens.", os.Args[1:])
	if *prepare != "" {
		if err := prepareStateDir(*stateDir, *prepare); err != nil {
			cli.Fail(name, err)
		}
		return
	}

	if *nodeName == "" {
		cli.Fail(name, errors.New("--node-name (or $NODE_NAME) is required"))
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		cli.Fail(name, errors.New("--tls-cert-file and --tls-key-file go together"))
	}
	defPolicy, err := cli.ParsePolicy("default-token-policy", *defaultPolicy)
	if err != nil {
		cli.Fail(name, err)
	}
	base, err := advertiseURL(*advertise, *listen, *tlsCert != "")
	if err != nil {
		cli.Fail(name, err)
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("agent")
	if *kubeconfig != "" {
		os.Setenv(clientcmd.RecommendedConfigPathEnvVar, *kubeconfig)
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		cli.Fail(name, err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var agent *node.Agent
	metrics, err := node.NewMetrics(reg, func() *node.Agent { return agent })
	if err != nil {
		cli.Fail(name, err)
	}
	clk := clock.RealClock{}
	agent, err = node.New(cfg, node.Options{NodeName: *nodeName, DefaultPolicy: defPolicy, Endpoint: base, StateDir: *stateDir, Clock: clk, Log: log, Metrics: metrics})
	if err != nil {
		cli.Fail(name, err)
	}
	auth := api.NewAuthResults()
	reg.MustRegister(auth)
	srv := &api.Server{Cameras: agent, Keys: agent.Keys, Clock: clk, Log: log.WithName("http"), TokenServiceURL: *tokenService,
		DefaultPolicy: defPolicy, Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), AuthResults: auth, Ready: agent.Ready}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		cli.Fail(name, err)
	}
	ctx := ctrl.SetupSignalHandler()
	// No write timeout: streams last as long as their token; each part has its own deadline.
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 2)
	go func() {
		log.Info("Serving the camera API", "address", ln.Addr().String(), "endpoint", base, "tls", *tlsCert != "")
		if *tlsCert != "" {
			errc <- hs.ServeTLS(ln, *tlsCert, *tlsKey)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	go func() { errc <- agent.Start(ctx) }()
	if *pprofAddr != "" {
		go func() {
			mux := http.NewServeMux()
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			ps := &http.Server{Addr: *pprofAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
			errc <- ps.ListenAndServe()
		}()
	}
	log.Info("Starting agent", "version", cli.Version, "node", *nodeName, "tokenServiceURL", *tokenService, "defaultTokenPolicy", *defaultPolicy)
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(shutdown)
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error(err, "Agent stopped")
		os.Exit(1)
	}
}

// advertiseURL is the base URL written to status: the flag, else the node's address and the
// listen port.
func advertiseURL(flagValue, listen string, tls bool) (string, error) {
	if flagValue != "" {
		return strings.TrimSuffix(flagValue, "/"), nil
	}
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("--listen-address %q: %w", listen, err)
	}
	host := os.Getenv("NODE_IP")
	if host == "" {
		if host, err = os.Hostname(); err != nil {
			return "", fmt.Errorf("find this node's address for --advertise-url: %w", err)
		}
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}

// prepareStateDir creates dir if needed and gives it (not its contents: a state file written
// before belongs to the agent already) to owner, "uid:gid".
func prepareStateDir(dir, owner string) error {
	u, g, ok := strings.Cut(owner, ":")
	uid, errU := strconv.Atoi(u)
	gid, errG := strconv.Atoi(g)
	if !ok || errU != nil || errG != nil || uid < 0 || gid < 0 {
		return fmt.Errorf("--prepare-state-dir %q: want uid:gid, such as 65532:65532", owner)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create the state directory: %w", err)
	}
	// Mode first, while root still owns it: then CAP_CHOWN is the one capability needed.
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("restrict the state directory %s: %w", dir, err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return fmt.Errorf("give the state directory %s to %s: %w", dir, owner, err)
	}
	return nil
}
