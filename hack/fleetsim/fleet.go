package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/camfleet/camfleet/agent/node"
	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/testenv"
)

// The fleet's fixed names: one namespace, one policy, and the chart's agent ServiceAccount,
// which the write fence (config/admission) matches by name.
const (
	fleetNS       = "fleet"
	policyName    = "home"
	agentNS       = "camfleet-system"
	agentSA       = "camfleet-agent"
	policySecret  = policyName + "-signing-keys"
	nodeNameExtra = "authentication.kubernetes.io/node-name"
)

// quietFor is how often the test pattern's object crosses each camera: rarely, so the steady
// state is that of a fleet watching still scenes; a motion event costs a status write (at most
// every 10 s per camera) and a Kubernetes Event (at most every minute), which a busy scene adds
// on top of the heartbeats measured here.
const quietFor = time.Hour

var policyKey = types.NamespacedName{Namespace: fleetNS, Name: policyName}

// fleet is one simulated fleet on its own control plane.
type fleet struct {
	env     *testenv.Env
	admin   client.WithWatch
	nodes   []string
	cameras int // per node
	fps     int32
	motion  bool
	agents  []*simAgent
	// profiler, when set, profiles each rotation (--profile).
	profiler *profiler
	// policyCommits follows the policy's writes in etcd; set by the first rotation.
	policyCommits commits
}

// simAgent is one node's agent: the agent package's own Agent, as the binary runs it, under a
// ServiceAccount token bound to the node.
type simAgent struct {
	node  string
	agent *node.Agent
	stop  context.CancelFunc
	done  chan struct{}
}

// unlimited lifts client-go's client-side rate limit from the bench's own admin client, so
// creating a thousand Nodes measures the API server rather than the limiter.
func unlimited(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.QPS, c.Burst = -1, 0
	return c
}

func newFleet(env *testenv.Env, nodes, cameras int, fps int32, motion bool) (*fleet, error) {
	admin, err := client.NewWithWatch(unlimited(env.Config), client.Options{Scheme: env.Scheme})
	if err != nil {
		return nil, fmt.Errorf("admin client: %w", err)
	}
	f := &fleet{env: env, admin: admin, cameras: cameras, fps: fps, motion: motion}
	for i := range nodes {
		f.nodes = append(f.nodes, fmt.Sprintf("pi-%04d", i))
	}
	return f, nil
}

// install puts in what the chart would: the agent's ServiceAccount, its generated ClusterRole
// and binding, and the per-node write fence; then the policy, the Nodes and the Cameras.
func (f *fleet) install(ctx context.Context) error {
	for _, ns := range []string{agentNS, fleetNS} {
		if err := f.admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return fmt.Errorf("namespace %s: %w", ns, err)
		}
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: agentNS, Name: agentSA}}
	if err := f.admin.Create(ctx, sa); err != nil {
		return fmt.Errorf("agent ServiceAccount: %w", err)
	}
	role := &rbacv1.ClusterRole{}
	if err := readYAML(filepath.Join(f.env.RepoRoot, "config", "rbac", "agent", "role.yaml"), role); err != nil {
		return err
	}
	role.Name = "camfleet-agent"
	bind := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: agentNS, Name: agentSA}}}
	vap := &admissionv1.ValidatingAdmissionPolicy{}
	if err := readYAML(filepath.Join(f.env.RepoRoot, "config", "admission", "agent-node-fence.yaml"), vap); err != nil {
		return err
	}
	vapb := &admissionv1.ValidatingAdmissionPolicyBinding{}
	if err := readYAML(filepath.Join(f.env.RepoRoot, "config", "admission", "agent-node-fence-binding.yaml"), vapb); err != nil {
		return err
	}
	for _, o := range []client.Object{role, bind, vap, vapb} {
		if err := f.admin.Create(ctx, o); err != nil {
			return fmt.Errorf("create %T %s: %w", o, o.GetName(), err)
		}
	}
	p := &camv1.TokenPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: fleetNS, Name: policyName},
		Spec: camv1.TokenPolicySpec{Audience: []string{"camfleet"}}}
	if err := f.admin.Create(ctx, p); err != nil {
		return fmt.Errorf("token policy: %w", err)
	}
	err := parallel(ctx, len(f.nodes), func(i int) error {
		n := f.nodes[i]
		if err := f.admin.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n,
			Labels: map[string]string{"camfleet.io/camera-node": "true", "kubernetes.io/arch": "arm64"}}}); err != nil {
			return fmt.Errorf("node %s: %w", n, err)
		}
		for c := range f.cameras {
			cam := &camv1.Camera{ObjectMeta: metav1.ObjectMeta{Namespace: fleetNS, Name: fmt.Sprintf("%s-cam%d", n, c)},
				Spec: camv1.CameraSpec{NodeName: n, TokenPolicyRef: &camv1.PolicyReference{Name: policyName},
					Source: camv1.CameraSource{Type: camv1.SourceTestPattern, Width: 160, Height: 120, FPS: f.fps,
						TestPattern: &camv1.TestPatternSource{MotionEvery: &metav1.Duration{Duration: quietFor}}},
					Motion: camv1.MotionSpec{Enabled: ptr.To(f.motion)}}}
			if err := f.admin.Create(ctx, cam); err != nil {
				return fmt.Errorf("camera %s: %w", cam.Name, err)
			}
		}
		return nil
	})
	return err
}

func readYAML(path string, into any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(b, into); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

// identity asks the TokenRequest API for a token of the agent's ServiceAccount bound to the
// node, so the API server itself puts the node name into the token's user info, where the
// write fence reads it, as for the projected token of an agent pod on that node.
func (f *fleet) identity(ctx context.Context, cs kubernetes.Interface, nodeName string) (*rest.Config, error) {
	n := &corev1.Node{}
	if err := f.admin.Get(ctx, types.NamespacedName{Name: nodeName}, n); err != nil {
		return nil, err
	}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: ptr.To[int64](3600),
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Node", APIVersion: "v1", Name: n.Name, UID: n.UID},
	}}
	tr, err := cs.CoreV1().ServiceAccounts(agentNS).CreateToken(ctx, agentSA, req, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("token for the agent on %s: %w", nodeName, err)
	}
	cfg := rest.AnonymousClientConfig(f.env.Config)
	cfg.BearerToken = tr.Status.Token
	cfg.UserAgent = "camfleet-agent/" + nodeName
	// The client-side limits ctrl.GetConfig gives the agent binary (client-go's own are lower).
	cfg.QPS, cfg.Burst = 20, 30
	// Its own connections, as a node has: client-go shares one transport among configs with the
	// same TLS settings (a bearer token is not one), which would carry every simulated agent's
	// watches over one HTTP/2 connection, served by one goroutine in the API server. A dialer
	// of its own gives each agent a transport of its own.
	cfg.Dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return cfg, nil
}

// startAgents starts one agent per node, each with its own identity and state directory.
func (f *fleet) startAgents(ctx context.Context, stateRoot string) error {
	cs, err := kubernetes.NewForConfig(unlimited(f.env.Config))
	if err != nil {
		return err
	}
	f.agents = make([]*simAgent, len(f.nodes))
	return parallel(ctx, len(f.nodes), func(i int) error {
		n := f.nodes[i]
		cfg, err := f.identity(ctx, cs, n)
		if err != nil {
			return err
		}
		dir := filepath.Join(stateRoot, n)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		a, err := node.New(cfg, node.Options{NodeName: n, Endpoint: "http://" + n + ".lan:8090", StateDir: dir, Log: logr.Discard()})
		if err != nil {
			return fmt.Errorf("agent on %s: %w", n, err)
		}
		actx, cancel := context.WithCancel(ctx)
		s := &simAgent{node: n, agent: a, stop: cancel, done: make(chan struct{})}
		go func() {
			defer close(s.done)
			if err := a.Start(actx); err != nil && actx.Err() == nil {
				fmt.Fprintf(os.Stderr, "fleetsim: agent on %s stopped: %v\n", n, err)
			}
		}()
		f.agents[i] = s
		return nil
	})
}

func (f *fleet) stopAgents() {
	for _, a := range f.agents {
		if a != nil {
			a.stop()
		}
	}
	for _, a := range f.agents {
		if a != nil {
			<-a.done
		}
	}
}

// settled reports whether every Camera is Ready and every agent reports the active key.
func (f *fleet) settled(ctx context.Context) (bool, string, error) {
	var p camv1.TokenPolicy
	if err := f.admin.Get(ctx, policyKey, &p); err != nil {
		return false, "", err
	}
	want := fmt.Sprintf("%d/%d", len(f.nodes), len(f.nodes))
	if p.Status.ActiveKeyID == "" || p.Status.Agents != want {
		return false, fmt.Sprintf("policy agents %q, want %s", p.Status.Agents, want), nil
	}
	var cams camv1.CameraList
	if err := f.admin.List(ctx, &cams, client.InNamespace(fleetNS)); err != nil {
		return false, "", err
	}
	notReady := 0
	var example string
	for _, c := range cams.Items {
		if !isReady(c.Status.Conditions) {
			notReady++
			example = c.Name + ": " + reasonOf(c.Status.Conditions)
		}
	}
	if notReady > 0 || len(cams.Items) != len(f.nodes)*f.cameras {
		return false, fmt.Sprintf("%d of %d cameras not Ready (%s)", notReady, len(cams.Items), example), nil
	}
	return true, "", nil
}

func isReady(cs []metav1.Condition) bool {
	for _, c := range cs {
		if c.Type == camv1.ConditionReady {
			return c.Status == metav1.ConditionTrue
		}
	}
	return false
}

func reasonOf(cs []metav1.Condition) string {
	for _, c := range cs {
		if c.Type == camv1.ConditionReady {
			return c.Reason
		}
	}
	return "no Ready condition"
}

// await polls cond every interval until it holds, and fails after timeout with its last why.
func await(ctx context.Context, timeout, interval time.Duration, what string, cond func() (bool, string, error)) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		ok, why, err := cond()
		if err != nil && !apierrors.IsNotFound(err) {
			return 0, fmt.Errorf("%s: %w", what, err)
		}
		if ok {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("timed out after %s waiting for %s: %s", timeout, what, why)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(interval):
		}
	}
}

// parallel runs fn for 0..n-1 on a few goroutines and returns the first error.
func parallel(ctx context.Context, n int, fn func(i int) error) error {
	const workers = 16
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []string
		next = make(chan int)
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					errs = append(errs, err.Error())
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("%d failed, first: %s", len(errs), errs[0])
	}
	return ctx.Err()
}
