package node

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"github.com/camfleet/camfleet/agent/api"
	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/controllers"
	"github.com/camfleet/camfleet/internal/keys"
	"github.com/camfleet/camfleet/internal/testkit"
	"github.com/camfleet/camfleet/internal/token"
)

// startController runs the controller's reconcilers as the binary does, on one namespace.
func startController(t *testing.T, ns string) {
	t.Helper()
	opts := controllers.CacheOptions()
	opts.DefaultNamespaces = map[string]cache.Config{ns: {}}
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{Scheme: env.Scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0", Cache: opts, Controller: config.Controller{SkipNameValidation: ptr.To(true)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := controllers.Setup(mgr, prometheus.NewRegistry(), controllers.Options{TokenServiceURL: "https://tokens.test", Clock: clock.RealClock{}}); err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, mgr.Start)
}

// agentIdentity grants a user the agent's generated ClusterRole and returns a config that
// acts as that user, as an agent's ServiceAccount would.
func agentIdentity(t *testing.T, ns, user string) *rest.Config {
	t.Helper()
	ctx := context.Background()
	b, err := os.ReadFile(filepath.Join(env.RepoRoot, "config", "rbac", "agent", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(b, role); err != nil {
		t.Fatal(err)
	}
	role.Name = ns + "-" + user
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	cfg.UserAgent = user
	if err := env.Client.Create(ctx, role); apierrors.IsAlreadyExists(err) {
		return cfg // an agent restarted on the same node keeps its identity
	} else if err != nil {
		t.Fatal(err)
	}
	bind := &rbacv1.ClusterRoleBinding{RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: user}}}
	bind.Name = role.Name
	if err := env.Client.Create(ctx, bind); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(ctx, bind); _ = env.Client.Delete(ctx, role) })
	return cfg
}

// nodeAgent is a running agent with its HTTP API on a real listener.
type nodeAgent struct {
	agent *Agent
	url   string
	// stop ends the agent and its listener, as when its node goes down.
	stop func()
}

func startAgent(t *testing.T, ns, node string) nodeAgent {
	t.Helper()
	return startAgentWith(t, ns, node, Options{})
}

// startAgentWith starts an agent with o, filled in with the node, a real listener, a state
// directory, the real clock and a test logger where o leaves them unset.
func startAgentWith(t *testing.T, ns, node string, o Options) nodeAgent {
	t.Helper()
	cfg := agentIdentity(t, ns, "camfleet-agent-"+node)
	srv := httptest.NewUnstartedServer(nil)
	url := "http://" + srv.Listener.Addr().String()
	o.NodeName, o.Endpoint = node, url
	if o.StateDir == "" {
		o.StateDir = t.TempDir()
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	o.Log = testr.New(t).WithName(node)
	a, err := New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	s := &api.Server{Cameras: a, Keys: a.Keys, Clock: o.Clock, Log: testr.New(t)}
	srv.Config.Handler = s.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	stop := testkit.Run(t, a.Start)
	return nodeAgent{agent: a, url: url, stop: func() { stop(); srv.Close() }}
}

// settle bounds every wait on the controller and the agents.
const settle = 20 * time.Second

func testCamera(ns, name, node string) *camv1.Camera {
	c := &camv1.Camera{Spec: camv1.CameraSpec{NodeName: node, TokenPolicyRef: &camv1.PolicyReference{Name: "home"},
		Source: camv1.CameraSource{Type: camv1.SourceTestPattern, Width: 160, Height: 120, FPS: 5, TestPattern: &camv1.TestPatternSource{}}}}
	c.Namespace, c.Name = ns, name
	return c
}

// signingKey reads the policy's active key, as the token service does.
func signingKey(t *testing.T, ns string) token.SigningKey {
	t.Helper()
	var s corev1.Secret
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "home-signing-keys"}, &s); err != nil {
		t.Fatal(err)
	}
	set, _ := keys.Decode(s.Data, time.Now())
	a := set.Active()
	if a == nil {
		t.Fatal("no active key")
	}
	return token.SigningKey{KeyID: a.ID, Algorithm: token.Algorithm(a.Algorithm), Signer: a.Signer()}
}

func sign(t *testing.T, ns string, k token.SigningKey) string {
	t.Helper()
	now := time.Now()
	tok, err := token.Sign(token.Claims{Issuer: "https://tokens.test/policies/" + ns + "/home", Subject: "alice", Audience: []string{"camfleet"},
		IssuedAt: now, Expiry: now.Add(10 * time.Minute), Perms: []string{"camera:snapshot:" + ns + "/*"}}, token.TypeAccess, k)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func snapshotStatus(t *testing.T, a nodeAgent, ns, cam, tok string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", a.url+"/api/cameras/"+ns+"/"+cam+"/snapshot.jpg", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// answers is whether a snapshot request with tok gets want, and what it got: a condition
// for testkit.Eventually.
func answers(t *testing.T, a nodeAgent, ns, cam, tok string, want int) (bool, string) {
	t.Helper()
	got := snapshotStatus(t, a, ns, cam, tok)
	return got == want, fmt.Sprintf("snapshot answered %d, want %d", got, want)
}

func annotate(t *testing.T, ns string, kv ...string) {
	t.Helper()
	p := &camv1.TokenPolicy{}
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "home"}, p); err != nil {
		t.Fatal(err)
	}
	base := p.DeepCopy()
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		p.Annotations[kv[i]] = kv[i+1]
	}
	if err := env.Client.Patch(context.Background(), p, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
}

func activeKey(t *testing.T, ns string) string {
	p := &camv1.TokenPolicy{}
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "home"}, p); err != nil {
		t.Fatal(err)
	}
	return p.Status.ActiveKeyID
}

// TestTwoAgentsEnforceRotationAndRevocation: the controller and two agents for two nodes.
// Each Camera gets status from its own agent only; a token from a freshly rotated key is
// accepted on both at once; after an emergency revoke both refuse old tokens within seconds.
func TestTwoAgentsEnforceRotationAndRevocation(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	startController(t, ns)
	p := &camv1.TokenPolicy{Spec: camv1.TokenPolicySpec{Audience: []string{"camfleet"}}}
	p.Namespace, p.Name = ns, "home"
	if err := env.Client.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	env.Nodes(t, "pi-a", "pi-b")
	for _, c := range []*camv1.Camera{testCamera(ns, "cam-a", "pi-a"), testCamera(ns, "cam-b", "pi-b")} {
		if err := env.Client.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	agents := map[string]nodeAgent{"pi-a": startAgent(t, ns, "pi-a"), "pi-b": startAgent(t, ns, "pi-b")}

	testkit.Eventually(t, settle, "a key to sign", func() (bool, string) { return activeKey(t, ns) != "", "no active key in the policy's status" })
	first := activeKey(t, ns)
	for node, cam := range map[string]string{"pi-a": "cam-a", "pi-b": "cam-b"} {
		testkit.Eventually(t, settle, cam+" Ready with the policy's key", func() (bool, string) {
			c := &camv1.Camera{}
			_ = env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: cam}, c)
			return meta.IsStatusConditionTrue(c.Status.Conditions, camv1.ConditionReady) && slices.Contains(c.Status.LoadedKeyIDs, first) && c.Status.EnforcedKeyID == first,
				fmt.Sprintf("key %s, status %+v", first, c.Status)
		})
		c := &camv1.Camera{}
		_ = env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: cam}, c)
		if c.Status.Endpoint != agents[node].url+"/api/cameras/"+ns+"/"+cam+"/" || c.Status.Resolution != "160x120" || c.Status.LastFrameTime == nil {
			t.Errorf("%s status %+v", cam, c.Status)
		}
		for _, mf := range c.ManagedFields {
			if mf.Subresource == "status" && mf.Manager != "camfleet-agent" && mf.Manager != "camfleet-controller" {
				t.Errorf("%s status written by %q", cam, mf.Manager)
			}
		}
		if got := agents[node].agent.List(); len(got) != 1 || got[0].Key.Name != cam {
			t.Errorf("agent %s serves %d cameras", node, len(got))
		}
	}

	t1 := sign(t, ns, signingKey(t, ns))
	for node, cam := range map[string]string{"pi-a": "cam-a", "pi-b": "cam-b"} {
		testkit.Eventually(t, settle, node+" serves a snapshot", func() (bool, string) { return answers(t, agents[node], ns, cam, t1, http.StatusOK) })
	}

	// A scheduled-style rotation: the new key signs at once, old tokens stay valid.
	annotate(t, ns, camv1.AnnotationRotate, "r1")
	testkit.Eventually(t, settle, "the rotation", func() (bool, string) { return activeKey(t, ns) != first, "the active key is still " + first })
	t2 := sign(t, ns, signingKey(t, ns))
	for node, cam := range map[string]string{"pi-a": "cam-a", "pi-b": "cam-b"} {
		testkit.Eventually(t, settle, node+" accepts the new key", func() (bool, string) { return answers(t, agents[node], ns, cam, t2, http.StatusOK) })
		if s := snapshotStatus(t, agents[node], ns, cam, t1); s != http.StatusOK {
			t.Errorf("%s refused a token of the retiring key: %d", node, s)
		}
	}

	// Emergency rotation with revoke: every earlier token fails on both nodes within seconds.
	second := activeKey(t, ns)
	annotate(t, ns, camv1.AnnotationRotate, "r2", camv1.AnnotationRotateRevoke, "true")
	testkit.Eventually(t, settle, "the emergency rotation", func() (bool, string) { return activeKey(t, ns) != second, "the active key is still " + second })
	revokedAt := time.Now()
	for node, cam := range map[string]string{"pi-a": "cam-a", "pi-b": "cam-b"} {
		testkit.Eventually(t, settle, node+" refuses revoked keys", func() (bool, string) {
			s1, s2 := snapshotStatus(t, agents[node], ns, cam, t1), snapshotStatus(t, agents[node], ns, cam, t2)
			return s1 == http.StatusUnauthorized && s2 == http.StatusUnauthorized, fmt.Sprintf("a token of the first key answered %d, of the second %d", s1, s2)
		})
	}
	t.Logf("both agents refused the revoked keys %s after the rotation", time.Since(revokedAt).Round(time.Millisecond))
	t3 := sign(t, ns, signingKey(t, ns))
	for node, cam := range map[string]string{"pi-a": "cam-a", "pi-b": "cam-b"} {
		if s := snapshotStatus(t, agents[node], ns, cam, t3); s != http.StatusOK {
			t.Errorf("%s refused the new key after revoke: %d", node, s)
		}
	}
}

// TestAgentIdentityCannotReadSecretsOrConfigMaps: the agent's generated RBAC reads Cameras
// and TokenPolicies and writes Camera status, and nothing else.
func TestAgentIdentityCannotReadSecretsOrConfigMaps(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	cfg := agentIdentity(t, ns, "camfleet-agent-thief")
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	for what, fn := range map[string]func() error{
		"list Secrets": func() error { return c.List(ctx, &corev1.SecretList{}, client.InNamespace(ns)) },
		"get a Secret": func() error {
			return c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "home-signing-keys"}, &corev1.Secret{})
		},
		"list ConfigMaps": func() error { return c.List(ctx, &corev1.ConfigMapList{}) },
		"get a ConfigMap": func() error {
			return c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "home-jwks"}, &corev1.ConfigMap{})
		},
		"create a Camera": func() error { return c.Create(ctx, testCamera(ns, "planted", "pi-a")) },
		"update TokenPolicies": func() error {
			p := &camv1.TokenPolicy{}
			p.Namespace, p.Name = ns, "home"
			return c.Patch(ctx, p, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"revokedTokenIDs":[]}}`)))
		},
	} {
		if err := fn(); !apierrors.IsForbidden(err) {
			t.Errorf("the agent's identity may %s: %v", what, err)
		}
	}
	for what, fn := range map[string]func() error{
		"list Cameras":       func() error { return c.List(ctx, &camv1.CameraList{}, client.InNamespace(ns)) },
		"list TokenPolicies": func() error { return c.List(ctx, &camv1.TokenPolicyList{}) },
	} {
		if err := fn(); err != nil {
			t.Errorf("the agent's identity may not %s: %v", what, err)
		}
	}
}

// TestMotionReachesTheCamera: the test pattern's scripted crossing becomes a MotionDetected
// Event on the Camera and a motion count and time in its status; a suspended camera stops and
// says so; the camera comes back when resumed.
func TestMotionReachesTheCamera(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	startController(t, ns)
	p := &camv1.TokenPolicy{Spec: camv1.TokenPolicySpec{Audience: []string{"camfleet"}}}
	p.Namespace, p.Name = ns, "home"
	if err := env.Client.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	env.Nodes(t, "pi-m")
	c := testCamera(ns, "yard", "pi-m")
	c.Spec.Source.FPS = 10
	c.Spec.Source.TestPattern = &camv1.TestPatternSource{MotionEvery: &metav1.Duration{Duration: 2 * time.Second}, MotionDuration: &metav1.Duration{Duration: time.Second}, ObjectPerMille: 200}
	c.Spec.Motion.EventGap = &metav1.Duration{Duration: 200 * time.Millisecond}
	if err := env.Client.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, ns, "pi-m")
	key := types.NamespacedName{Namespace: ns, Name: "yard"}
	testkit.Eventually(t, settle, "a MotionDetected Event on the Camera", func() (bool, string) {
		var evs eventsv1.EventList
		_ = env.Client.List(ctx, &evs, client.InNamespace(ns))
		for _, e := range evs.Items {
			if e.Reason == "MotionDetected" && e.Regarding.Name == "yard" && e.Regarding.Kind == "Camera" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("none among %d Events", len(evs.Items))
	})
	testkit.Eventually(t, settle, "motion in the Camera's status", func() (bool, string) {
		cam := &camv1.Camera{}
		_ = env.Client.Get(ctx, key, cam)
		return cam.Status.MotionEvents >= 1 && cam.Status.LastMotionTime != nil &&
			meta.IsStatusConditionTrue(cam.Status.Conditions, camv1.ConditionMotionDetection), fmt.Sprintf("status %+v", cam.Status)
	})

	suspend := func(v bool) {
		cam := &camv1.Camera{}
		if err := env.Client.Get(ctx, key, cam); err != nil {
			t.Fatal(err)
		}
		base := cam.DeepCopy()
		cam.Spec.Suspend = v
		if err := env.Client.Patch(ctx, cam, client.MergeFrom(base)); err != nil {
			t.Fatal(err)
		}
	}
	suspend(true)
	testkit.Eventually(t, settle, "the suspended camera to stop", func() (bool, string) {
		cam := &camv1.Camera{}
		_ = env.Client.Get(ctx, key, cam)
		r := meta.FindStatusCondition(cam.Status.Conditions, camv1.ConditionReady)
		n := len(a.agent.List())
		return n == 0 && r != nil && r.Reason == camv1.ReasonSuspended, fmt.Sprintf("the agent serves %d cameras, Ready is %+v", n, r)
	})
	suspend(false)
	testkit.Eventually(t, settle, "the resumed camera to serve again", func() (bool, string) {
		cam := &camv1.Camera{}
		_ = env.Client.Get(ctx, key, cam)
		n := len(a.agent.List())
		return n == 1 && meta.IsStatusConditionTrue(cam.Status.Conditions, camv1.ConditionReady),
			fmt.Sprintf("the agent serves %d cameras, Ready is %+v", n, meta.FindStatusCondition(cam.Status.Conditions, camv1.ConditionReady))
	})
}
