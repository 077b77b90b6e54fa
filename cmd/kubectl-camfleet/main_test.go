package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/camfleet/camfleet/agent/api"
	"github.com/camfleet/camfleet/agent/node"
	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/controllers"
	"github.com/camfleet/camfleet/internal/issuer"
	"github.com/camfleet/camfleet/internal/testenv"
	"github.com/camfleet/camfleet/internal/testkit"
)

// env is one real API server and etcd for the package's tests; bin is the plugin as it ships,
// built once.
var (
	env *testenv.Env
	bin string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "kubectl-camfleet-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin = filepath.Join(dir, "kubectl-camfleet")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		return 1
	}
	if env, err = testenv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "testenv: stop:", err)
		}
	}()
	return m.Run()
}

// settle bounds every wait on the controller and the agents.
const settle = 30 * time.Second

// password is alice's, in every fixture.
const password = "camfleet-test-pass"

// fleetFixture is one namespace with a policy "home", user alice (a viewer of every camera of
// the namespace), the controller and its token service, and cameras on nodes with agents.
type fleetFixture struct {
	ns string
	// nodes maps a short name ("a") to the node's unique name: agents of other tests watch
	// their own nodes only.
	nodes        map[string]string
	agents       map[string]*testAgent
	tokenService string
}

type testAgent struct {
	url  string
	stop func()
}

// fleetOptions shape a fixture. Cameras maps camera names to short node names; agents run on
// the nodes in Agents.
type fleetOptions struct {
	Cameras         map[string]string
	Agents          []string
	AllowQueryToken bool
}

// defaultFleet: porch on a, shed on b, both with agents; garage on c, whose agent never runs.
var defaultFleet = fleetOptions{Cameras: map[string]string{"porch": "a", "shed": "b", "garage": "c"}, Agents: []string{"a", "b"}}

func newFleet(t *testing.T, o fleetOptions) *fleetFixture {
	t.Helper()
	ctx := context.Background()
	f := &fleetFixture{ns: env.Namespace(t), nodes: map[string]string{}, agents: map[string]*testAgent{}}
	f.tokenService = "http://" + testkit.FreeAddr(t)
	startController(t, f.ns, f.tokenService)

	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := &corev1.Secret{Data: map[string][]byte{"alice": hash}}
	users.Name, users.Namespace = "users", f.ns
	users.Labels = map[string]string{camv1.LabelPassword: camv1.LabelPasswordValue}
	create(t, users)
	p := &camv1.TokenPolicy{Spec: camv1.TokenPolicySpec{
		Audience: []string{"camfleet"},
		Roles:    []camv1.Role{{Name: "viewer", Permissions: []camv1.Permission{camv1.Permission("camera:*:" + f.ns + "/*")}}},
		Users:    []camv1.User{{Name: "alice", Roles: []string{"viewer"}, PasswordSecretRef: camv1.SecretKeyReference{Name: "users", Key: "alice"}}},
		Tokens:   camv1.TokenLifetimes{AllowQueryToken: o.AllowQueryToken},
	}}
	p.Name, p.Namespace = "home", f.ns
	create(t, p)

	for cam, short := range o.Cameras {
		nodeName := f.ns + "-" + short
		f.nodes[short] = nodeName
		node := &corev1.Node{}
		node.Name = nodeName
		if err := env.Client.Create(ctx, node); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		c := &camv1.Camera{Spec: camv1.CameraSpec{NodeName: nodeName, TokenPolicyRef: &camv1.PolicyReference{Name: "home"},
			Source: camv1.CameraSource{Type: camv1.SourceTestPattern, Width: 160, Height: 120, FPS: 5, TestPattern: &camv1.TestPatternSource{
				MotionEvery: &metav1.Duration{Duration: 2 * time.Second}, MotionDuration: &metav1.Duration{Duration: time.Second}}},
			Motion: camv1.MotionSpec{EventGap: &metav1.Duration{Duration: time.Second}}}}
		c.Name, c.Namespace = cam, f.ns
		create(t, c)
	}
	for _, short := range o.Agents {
		f.agents[short] = startAgent(t, f.nodes[short])
	}
	want := fmt.Sprintf("%d/%d", len(o.Agents), len(o.Agents))
	testkit.Eventually(t, settle, "every agent to hold the policy's key", func() (bool, string) {
		p := f.policy(t)
		return p.Status.ActiveKeyID != "" && p.Status.Agents == want, fmt.Sprintf("active key %q, agents %q", p.Status.ActiveKeyID, p.Status.Agents)
	})
	for cam, short := range o.Cameras {
		if _, ok := f.agents[short]; !ok {
			continue
		}
		testkit.Eventually(t, settle, cam+" to be Ready", func() (bool, string) {
			c := f.camera(t, cam)
			return meta.IsStatusConditionTrue(c.Status.Conditions, camv1.ConditionReady), fmt.Sprintf("conditions %+v", c.Status.Conditions)
		})
	}
	return f
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("create %T %s/%s: %v", obj, obj.GetNamespace(), obj.GetName(), err)
	}
}

func (f *fleetFixture) policy(t *testing.T) *camv1.TokenPolicy {
	t.Helper()
	p := &camv1.TokenPolicy{}
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: "home"}, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fleetFixture) camera(t *testing.T, name string) *camv1.Camera {
	t.Helper()
	c := &camv1.Camera{}
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: name}, c); err != nil {
		t.Fatal(err)
	}
	return c
}

// startController runs the controller's reconcilers and its token service on one namespace, as
// the controller binary does with --token-service-bind-address.
func startController(t *testing.T, ns, tokenService string) {
	t.Helper()
	opts := controllers.CacheOptions()
	opts.DefaultNamespaces = map[string]cache.Config{ns: {}}
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{Scheme: env.Scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0", Cache: opts, Controller: config.Controller{SkipNameValidation: ptr.To(true)}, Logger: testr.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := controllers.Setup(mgr, prometheus.NewRegistry(), controllers.Options{TokenServiceURL: tokenService, Clock: clock.RealClock{}}); err != nil {
		t.Fatal(err)
	}
	svc, err := issuer.New(mgr, issuer.Options{ServiceURL: tokenService, Namespaces: []string{ns}, Clock: clock.RealClock{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := mgr.Add(issuer.Service{Addr: strings.TrimPrefix(tokenService, "http://"), Server: svc}); err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, mgr.Start)
}

// startAgent runs a real agent for a node, its HTTP API on a real listener.
func startAgent(t *testing.T, nodeName string) *testAgent {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	url := "http://" + srv.Listener.Addr().String()
	a, err := node.New(env.Config, node.Options{NodeName: nodeName, Endpoint: url, StateDir: t.TempDir(), Clock: clock.RealClock{}, Log: testr.New(t).WithName(nodeName)})
	if err != nil {
		t.Fatal(err)
	}
	s := &api.Server{Cameras: a, Keys: a.Keys, Clock: clock.RealClock{}, Log: testr.New(t), Ready: a.Ready}
	srv.Config.Handler = s.Handler()
	srv.Start()
	stop := testkit.Run(t, a.Start)
	return &testAgent{url: url, stop: func() { srv.Close(); stop() }}
}

// result is what a run of the plugin printed and how it exited.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// plugin runs the built plugin against the test API server in namespace ns, with stdin.
func plugin(t *testing.T, ns, stdin string, args ...string) result {
	t.Helper()
	return pluginEnv(t, nil, ns, stdin, args...)
}

func pluginEnv(t *testing.T, extraEnv []string, ns, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	full := []string{"--kubeconfig", env.Kubeconfig}
	if ns != "" {
		full = append(full, "-n", ns)
	}
	cmd := exec.CommandContext(ctx, bin, append(full, args...)...)
	cmd.Env = append(cleanEnv(), extraEnv...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run %v: %v", args, err)
	}
	return r
}

// cleanEnv is the test's environment without what would change the plugin's answers.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "KUBECONFIG=") || strings.HasPrefix(kv, "CAMFLEET_") || strings.HasPrefix(kv, "BROWSER=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// interrupt sends SIGINT to a running plugin, as Ctrl-C does.
func interrupt(cmd *exec.Cmd) error { return cmd.Process.Signal(syscall.SIGINT) }

// wantOK fails the test unless the plugin exited 0.
func wantOK(t *testing.T, r result) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("want exit 0, got %s", r)
	}
}

// wantError fails the test unless the plugin exited with code and said want on one line.
func wantError(t *testing.T, r result, code int, want string) {
	t.Helper()
	if r.code != code || !strings.Contains(r.stderr, want) || strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "error: ") {
		t.Errorf("want exit %d and one line saying %q, got %s", code, want, r)
	}
}
