package fleet

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/testkit"
)

// fleet is what the test has set up and later steps use.
type fleet struct {
	top          *testing.T // the whole test, which the fleet's processes and files outlive no step of
	ns           string     // the users' namespace: policy, cameras, access token
	cameraNodes  []string
	tokenService string // the token service's URL
	bins         map[string]string
	controller   *component
	agents       map[string]*component // by node
	agentURL     map[string]string     // by node
	cameraOf     map[string]string     // by node: the camera the agent there serves
}

// values are the chart values the test installs with: the images the fleet ships, never
// pulled (KWOK runs no containers), tolerations for KWOK's nodes, and the token service's URL.
func values(t *testing.T, f *fleet) string {
	t.Helper()
	kwok := `{key: kwok.x-k8s.io/node, operator: Exists, effect: NoSchedule}`
	v := fmt.Sprintf(`image: {tag: test, pullPolicy: Never}
controller:
  tokenServiceURL: %[1]s
  defaultTokenPolicy: %[2]s/home
  tolerations: [%[3]s]
tokenService:
  image: {tag: test, pullPolicy: Never}
  tolerations: [%[3]s]
agent:
  image: {tag: test, pullPolicy: Never}
  tolerations:
    - {key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}
    - %[3]s
`, f.tokenService, f.ns, kwok)
	path := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(path, []byte(v), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestFleetOnSimulatedPiNodes installs the chart with helm on 20 simulated arm64 nodes, 8 of
// them camera nodes, and runs the fleet's real binaries under the identities the cluster gives
// the chart's pods; each step builds on the one before and the test stops at the first that
// fails.
func TestFleetOnSimulatedPiNodes(t *testing.T) {
	f := &fleet{top: t, ns: env.Namespace(t), bins: map[string]string{}, agents: map[string]*component{}, agentURL: map[string]string{}, cameraOf: map[string]string{}}
	f.tokenService = "http://" + testkit.FreeAddr(t)
	t.Cleanup(func() {
		if t.Failed() {
			for _, args := range [][]string{{"get", "nodes", "-o", "wide", "--show-labels"}, {"get", "daemonsets,deployments,replicasets,pods", "-n", releaseNamespace, "-o", "wide"},
				{"get", "events", "-n", releaseNamespace}, {"get", "tokenpolicies,cameras,accesstokens", "-A", "-o", "wide"}} {
				cmd := exec.Command(env.Kubectl(), args...)
				cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig)
				out, err := cmd.CombinedOutput()
				t.Logf("--- kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
	})
	for _, step := range []struct {
		name string
		run  func(*testing.T, *fleet)
	}{
		{"the chart places agents on exactly the camera nodes and rolls out", installOnPiNodes},
		{"agents with node-bound tokens write only their own cameras", agentsWithNodeBoundTokens},
		{"a phone logs in, watches and acks at both agents", phoneStory},
		{"rotation, revocation and an AccessToken reach every agent", rotateRevokeAndAccessToken},
		{"helm upgrade keeps keys and tokens, uninstall keeps the users' objects", upgradeAndUninstall},
	} {
		if !t.Run(step.name, func(t *testing.T) { step.run(t, f) }) {
			return
		}
	}
}

func installOnPiNodes(t *testing.T, f *fleet) {
	ctx := context.Background()
	f.cameraNodes = piNodes(t, 20, func(i int) bool { return i%5 < 2 })
	if len(f.cameraNodes) != 8 {
		t.Fatalf("%d camera nodes, want 8", len(f.cameraNodes))
	}
	ns := &corev1.Namespace{}
	ns.Name = releaseNamespace
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	helm(t, "install", "camfleet", "charts/camfleet", "-n", releaseNamespace, "-f", values(t, f))
	byNode := awaitDaemonSet(t, f.cameraNodes)
	for _, p := range byNode {
		if img := p.Spec.Containers[0].Image; img != "ghcr.io/camfleet/camfleet-agent:test" || p.Spec.Containers[0].ImagePullPolicy != corev1.PullNever {
			t.Errorf("agent pod %s runs %s (pull %s)", p.Name, img, p.Spec.Containers[0].ImagePullPolicy)
		}
	}
	awaitRollout(t, "camfleet-controller")
	awaitRollout(t, "camfleet-token-service")
	t.Logf("DaemonSet and Deployments ready %s after helm install", time.Since(start).Round(time.Millisecond))
	var nodes corev1.NodeList
	if err := env.Client.List(ctx, &nodes); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		if n.Labels["kubernetes.io/arch"] != "arm64" || !slices.ContainsFunc(n.Status.Conditions, func(c corev1.NodeCondition) bool {
			return c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue
		}) {
			t.Errorf("node %s: arch %q, conditions %+v", n.Name, n.Labels["kubernetes.io/arch"], n.Status.Conditions)
		}
	}
}

// usersObjects creates what a camera owner creates: a password Secret, the TokenPolicy
// "home" and one Camera on each of the given nodes.
func usersObjects(t *testing.T, f *fleet, nodes []string) {
	t.Helper()
	ctx := context.Background()
	hash, err := bcrypt.GenerateFromPassword([]byte("alice-pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := &corev1.Secret{Data: map[string][]byte{"alice": hash, "bob": hash}}
	users.Name, users.Namespace = "users", f.ns
	users.Labels = map[string]string{camv1.LabelPassword: camv1.LabelPasswordValue}
	p := &camv1.TokenPolicy{Spec: camv1.TokenPolicySpec{
		Roles: []camv1.Role{{Name: "viewer", Permissions: []camv1.Permission{"camera:*", "alert:ack"}}},
		Users: []camv1.User{{Name: "alice", Roles: []string{"viewer"}, PasswordSecretRef: camv1.SecretKeyReference{Name: "users", Key: "alice"}},
			{Name: "bob", Roles: []string{"viewer"}, PasswordSecretRef: camv1.SecretKeyReference{Name: "users", Key: "bob"}}},
	}}
	p.Name, p.Namespace = "home", f.ns
	objs := []client.Object{users, p}
	for _, n := range nodes {
		c := &camv1.Camera{Spec: camv1.CameraSpec{NodeName: n, TokenPolicyRef: &camv1.PolicyReference{Name: "home"},
			Source: camv1.CameraSource{Type: camv1.SourceTestPattern, Width: 160, Height: 120, FPS: 5, TestPattern: &camv1.TestPatternSource{}}}}
		c.Namespace, c.Name = f.ns, "cam-"+n
		f.cameraOf[n] = c.Name
		objs = append(objs, c)
	}
	for _, o := range objs {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

func agentsWithNodeBoundTokens(t *testing.T, f *fleet) {
	ctx := context.Background()
	for _, name := range []string{"camfleet-controller", "camfleet-token-service", "camfleet-agent"} {
		f.bins[name] = testkit.Build(f.top, env.RepoRoot, "./cmd/"+name, name)
	}
	// Cameras on three camera nodes; agents run on the first two only.
	usersObjects(t, f, f.cameraNodes[:3])
	running := f.cameraNodes[:2]

	startController(t, f)
	tokens := firstPod(t, "camfleet-token-service")
	runComponent(t, f.top, f.bins["camfleet-token-service"], tokens, "--token-service-bind-address="+strings.TrimPrefix(f.tokenService, "http://"),
		"--metrics-bind-address=0", "--health-probe-bind-address=0")
	testkit.Eventually(t, settle, "the token service to serve", func() (bool, string) {
		code, body := call(http.MethodGet, f.tokenService+"/healthz", "", "")
		return code == http.StatusOK, fmt.Sprintf("%d %s", code, body)
	})

	pods := awaitDaemonSet(t, f.cameraNodes)
	for _, n := range running {
		startAgent(t, f, n, pods[n])
	}
	var policy camv1.TokenPolicy
	testkit.Eventually(t, settle, "the policy's key to sign", func() (bool, string) {
		_ = env.Client.Get(ctx, types.NamespacedName{Namespace: f.ns, Name: "home"}, &policy)
		return policy.Status.ActiveKeyID != "", fmt.Sprintf("status %+v", policy.Status)
	})
	for _, n := range running {
		cam := f.cameraOf[n]
		testkit.Eventually(t, settle, cam+" Ready with status from its own agent", func() (bool, string) {
			c := &camv1.Camera{}
			_ = env.Client.Get(ctx, types.NamespacedName{Namespace: f.ns, Name: cam}, c)
			return meta.IsStatusConditionTrue(c.Status.Conditions, camv1.ConditionReady) && c.Status.EnforcedKeyID == policy.Status.ActiveKeyID &&
				strings.HasPrefix(c.Status.Endpoint, f.agentURL[n]+"/"), fmt.Sprintf("status %+v", c.Status)
		})
	}
	// The camera on the third node has no agent: nobody else wrote its agent fields.
	idle := &camv1.Camera{}
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: f.ns, Name: f.cameraOf[f.cameraNodes[2]]}, idle); err != nil {
		t.Fatal(err)
	}
	if idle.Status.Endpoint != "" || len(idle.Status.LoadedKeyIDs) != 0 {
		t.Errorf("camera %s on a node without an agent has agent status %+v", idle.Name, idle.Status)
	}

	// The fence, with the agents' own credentials: each may write its node's camera and no other.
	a, b := running[0], running[1]
	for _, c := range []struct {
		node, cam string
		allowed   bool
	}{{a, f.cameraOf[a], true}, {a, f.cameraOf[b], false}, {a, f.cameraOf[f.cameraNodes[2]], false}, {b, f.cameraOf[a], false}} {
		err := patchStatusAs(t, f.agents[c.node], f.ns, c.cam)
		if c.allowed && err != nil {
			t.Errorf("agent on %s may not write its own camera %s: %v", c.node, c.cam, err)
		}
		if !c.allowed && (err == nil || !strings.Contains(err.Error(), "camfleet-agent-node-fence")) {
			t.Errorf("agent on %s writing %s on another node: %v, want refused by the node fence", c.node, c.cam, err)
		}
	}
	for _, n := range running {
		if logs := f.agents[n].logs.String(); strings.Contains(logs, "forbidden") || strings.Contains(logs, "node-fence") {
			t.Errorf("agent on %s was refused something it needs:\n%s", n, tail(logs, 30))
		}
	}
}

// startController runs the controller binary as the controller Deployment's pod.
func startController(t *testing.T, f *fleet) {
	t.Helper()
	probe := testkit.FreeAddr(t)
	f.controller = runComponent(t, f.top, f.bins["camfleet-controller"], firstPod(t, "camfleet-controller"),
		"--metrics-bind-address=0", "--health-probe-bind-address="+probe)
	testkit.Eventually(t, settle, "the controller to be ready", func() (bool, string) {
		if done, err := f.controller.exited(); done {
			t.Fatalf("the controller exited: %v\n%s", err, tail(f.controller.logs.String(), 30))
		}
		code, body := call(http.MethodGet, "http://"+probe+"/readyz", "", "")
		return code == http.StatusOK, fmt.Sprintf("%d %s", code, body)
	})
}

// startAgent runs the agent binary as the DaemonSet's pod on node.
func startAgent(t *testing.T, f *fleet, node string, pod corev1.Pod) {
	t.Helper()
	if pod.Spec.NodeName != node {
		t.Fatalf("pod %s is on %q, not %s", pod.Name, pod.Spec.NodeName, node)
	}
	addr := testkit.FreeAddr(t)
	f.agentURL[node] = "http://" + addr
	f.agents[node] = runComponent(t, f.top, f.bins["camfleet-agent"], pod, "--node-name="+node, "--listen-address="+addr,
		"--advertise-url="+f.agentURL[node], "--state-dir="+f.top.TempDir(), "--token-service-url="+f.tokenService)
	testkit.Eventually(t, settle, "the agent on "+node+" to serve", func() (bool, string) {
		if done, err := f.agents[node].exited(); done {
			t.Fatalf("the agent on %s exited: %v\n%s", node, err, tail(f.agents[node].logs.String(), 30))
		}
		code, body := call(http.MethodGet, f.agentURL[node]+"/healthz", "", "")
		return code == http.StatusOK, fmt.Sprintf("%d %s", code, body)
	})
}

// firstPod is the ready pod of a Deployment of the release.
func firstPod(t *testing.T, deployment string) corev1.Pod {
	t.Helper()
	d := awaitRollout(t, deployment)
	pods, err := readyPods(context.Background(), releaseNamespace, d.Spec.Selector)
	if err != nil || len(pods) == 0 {
		t.Fatalf("no ready pod of %s (%s): %v", deployment, selectorOf(d), err)
	}
	return pods[0]
}

// patchStatusAs sets a harmless status field of a Camera with an agent's own credentials.
func patchStatusAs(t *testing.T, agent *component, ns, cam string) error {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", agent.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	obj := &camv1.Camera{}
	obj.Namespace, obj.Name = ns, cam
	return c.Status().Patch(context.Background(), obj, client.RawPatch(types.MergePatchType, []byte(`{"status":{"fps":"1"}}`)))
}

// phoneStory is the microdot seed's phone app at each agent: log in at the camera, fetch a
// snapshot, open the stream, ack.
func phoneStory(t *testing.T, f *fleet) {
	for _, n := range f.cameraNodes[:2] {
		base := f.agentURL[n]
		code, body := call(http.MethodPost, base+"/api/login", "", `{"user":"alice","pass":"alice-pass"}`)
		var login struct {
			Token string `json:"token"`
		}
		if err := json.Unmarshal([]byte(body), &login); code != http.StatusOK || err != nil || login.Token == "" {
			t.Fatalf("login at %s: %d %s", n, code, body)
		}
		tok := login.Token
		// No wrong-password attempt here: the token service locks out after failed logins, and
		// later steps log alice in again (test/chart and internal/issuer cover refusals).
		cam := base + "/api/cameras/" + f.ns + "/" + f.cameraOf[n]
		if code, body := call(http.MethodGet, cam+"/snapshot.jpg", tok, ""); code != http.StatusOK || !strings.HasPrefix(body, "\xff\xd8") {
			t.Errorf("snapshot at %s: %d, %d bytes", n, code, len(body))
		}
		if code, _ := call(http.MethodGet, cam+"/snapshot.jpg", "", ""); code != http.StatusUnauthorized {
			t.Errorf("snapshot without a token at %s: %d", n, code)
		}
		if ct, err := firstStreamPart(cam+"/stream.mjpeg", tok); err != nil || ct != "image/jpeg" {
			t.Errorf("stream at %s: part %q, %v", n, ct, err)
		}
		code, body = call(http.MethodPost, base+"/api/ack", tok, `{"count": 3}`)
		var ack struct {
			OK   bool   `json:"ok"`
			User string `json:"user"`
		}
		if err := json.Unmarshal([]byte(body), &ack); code != http.StatusOK || err != nil || !ack.OK || ack.User != "alice" {
			t.Errorf("ack at %s: %d %s", n, code, body)
		}
		if code, body := call(http.MethodPost, base+"/api/ack", tok, `{}`); code != http.StatusBadRequest || !strings.Contains(body, "missing count") {
			t.Errorf("ack without count at %s: %d %s", n, code, body)
		}
	}
}

// firstStreamPart opens an MJPEG stream and returns the content type of its first part.
func firstStreamPart(url, tok string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/x-mixed-replace") {
		return "", fmt.Errorf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	r := bufio.NewReader(resp.Body)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && strings.EqualFold(k, "Content-Type") {
			return strings.TrimSpace(v), nil
		}
	}
}

// call sends one request, with tok as Bearer token when set, and returns the status and body;
// status 0 when nothing answered. It uses a stock client, idle connections and all: a login
// after a rotation's wait once met a connection the token service was closing
// (internal/issuer idleTimeout).
func call(method, url, tok, body string) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// login logs user in at the token service and returns the access token.
func login(t *testing.T, f *fleet, user string) string {
	t.Helper()
	code, body := call(http.MethodPost, f.tokenService+"/policies/"+f.ns+"/home/login", "", `{"user":"`+user+`","pass":"alice-pass"}`)
	var out struct {
		Token string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(body), &out); code != http.StatusOK || err != nil || out.Token == "" {
		t.Fatalf("login: %d %s", code, body)
	}
	return out.Token
}

// snapshotAt is the status of a snapshot request with tok at the agent on node.
func snapshotAt(f *fleet, node, tok string) int {
	code, _ := call(http.MethodGet, f.agentURL[node]+"/api/cameras/"+f.ns+"/"+f.cameraOf[node]+"/snapshot.jpg", tok, "")
	return code
}

// everyAgentAnswers awaits each running agent answering a snapshot with tok by want.
func everyAgentAnswers(t *testing.T, f *fleet, what, tok string, want int) {
	t.Helper()
	for _, n := range f.cameraNodes[:2] {
		testkit.Eventually(t, settle, fmt.Sprintf("the agent on %s to answer %s with %d", n, what, want), func() (bool, string) {
			got := snapshotAt(f, n, tok)
			return got == want, fmt.Sprintf("answered %d", got)
		})
	}
}

func policyStatus(t *testing.T, f *fleet) camv1.TokenPolicyStatus {
	t.Helper()
	p := &camv1.TokenPolicy{}
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: "home"}, p); err != nil {
		t.Fatal(err)
	}
	return p.Status
}

// awaitFleetOn waits until the policy signs with a key other than old and every agent serving
// its cameras has loaded it, as kubectl shows in the AGENTS column.
func awaitFleetOn(t *testing.T, f *fleet, old string) string {
	t.Helper()
	var kid string
	testkit.Eventually(t, settle, "every agent on a key newer than "+old, func() (bool, string) {
		s := policyStatus(t, f)
		kid = s.ActiveKeyID
		return kid != "" && kid != old && s.Agents == "2/2" && s.AgentsLoaded == 2, fmt.Sprintf("active %s, agents %q", kid, s.Agents)
	})
	out := kubectl(t, "get", "tokenpolicies", "-n", f.ns, "home", "-o", "custom-columns=ACTIVE:.status.activeKeyID")
	if !strings.Contains(out, kid) {
		t.Errorf("kubectl get tokenpolicies:\n%s\nwant active key %s", out, kid)
	}
	out = kubectl(t, "get", "tokenpolicies", "-n", f.ns)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.Contains(lines[0], "AGENTS") || !strings.Contains(lines[1], " 2/2 ") {
		t.Errorf("kubectl get tokenpolicies does not show both agents on the key:\n%s", out)
	}
	return kid
}

func rotateRevokeAndAccessToken(t *testing.T, f *fleet) {
	ctx := context.Background()
	first := policyStatus(t, f).ActiveKeyID
	old := login(t, f, "alice")
	everyAgentAnswers(t, f, "a token of the first key", old, http.StatusOK)

	// The fleet-wide rotation, as an operator types it.
	kubectl(t, "annotate", "tokenpolicies", "--all", "-A", camv1.AnnotationRotate+"=r1")
	second := awaitFleetOn(t, f, first)
	fresh := login(t, f, "alice")
	everyAgentAnswers(t, f, "a token of the new key", fresh, http.StatusOK)
	everyAgentAnswers(t, f, "a token of the retiring key", old, http.StatusOK)

	// Emergency: rotate and revoke; the old key's tokens fail everywhere.
	kubectl(t, "annotate", "--overwrite", "tokenpolicies", "--all", "-A", camv1.AnnotationRotate+"=r2", camv1.AnnotationRotateRevoke+"=true")
	awaitFleetOn(t, f, second)
	everyAgentAnswers(t, f, "a token of a revoked key", fresh, http.StatusUnauthorized)
	everyAgentAnswers(t, f, "a token of the first key", old, http.StatusUnauthorized)
	everyAgentAnswers(t, f, "a token after the revocation", login(t, f, "alice"), http.StatusOK)

	// An AccessToken for a recorder: its Secret holds a token that works at both agents.
	at := &camv1.AccessToken{Spec: camv1.AccessTokenSpec{PolicyName: "home", Subject: "nvr", Roles: []string{"viewer"}, SecretName: "nvr-token"}}
	at.Namespace, at.Name = f.ns, "nvr"
	if err := env.Client.Create(ctx, at); err != nil {
		t.Fatal(err)
	}
	everyAgentAnswers(t, f, "the AccessToken's token", accessToken(t, f), http.StatusOK)
}

// accessToken awaits and returns the token the AccessToken "nvr" wrote into its Secret.
func accessToken(t *testing.T, f *fleet) string {
	t.Helper()
	var s corev1.Secret
	testkit.Eventually(t, settle, "the AccessToken's Secret", func() (bool, string) {
		err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: "nvr-token"}, &s)
		return err == nil && len(s.Data["token"]) > 0, fmt.Sprint(err)
	})
	return string(s.Data["token"])
}

func upgradeAndUninstall(t *testing.T, f *fleet) {
	ctx := context.Background()
	before := policyStatus(t, f)
	var keysBefore corev1.Secret
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: f.ns, Name: before.SecretName}, &keysBefore); err != nil {
		t.Fatal(err)
	}
	// bob, not alice: alice has logged in five times already, and the token service's
	// failed-login limiter counts successful logins too (see the report on issue 16).
	user := login(t, f, "bob")
	machine := accessToken(t, f)

	// Changed values: the controller gets more memory, so its pod is replaced, and the token
	// service a second replica. The agents' pods stay as they are.
	oldController := f.controller.pod.Name
	helm(t, "upgrade", "camfleet", "charts/camfleet", "-n", releaseNamespace, "--reuse-values",
		"--set", "controller.resources.limits.memory=320Mi", "--set", "tokenService.replicas=2")
	d := awaitRollout(t, "camfleet-controller")
	if d.Spec.Template.Spec.Containers[0].Resources.Limits.Memory().String() != "320Mi" {
		t.Errorf("the upgrade did not reach the controller: limits %v", d.Spec.Template.Spec.Containers[0].Resources.Limits)
	}
	awaitRollout(t, "camfleet-token-service")
	awaitDaemonSet(t, f.cameraNodes)
	// The replaced pod's process ends as the kubelet would end it; its token died with the
	// pod. The new pod's process starts with the new pod's token.
	f.controller.stop()
	if newPod := firstPod(t, "camfleet-controller"); newPod.Name == oldController {
		t.Fatalf("the controller's pod %s was not replaced", oldController)
	}
	startController(t, f)

	after := policyStatus(t, f)
	if after.ActiveKeyID != before.ActiveKeyID {
		t.Errorf("the upgrade changed the active key from %s to %s", before.ActiveKeyID, after.ActiveKeyID)
	}
	var keysAfter corev1.Secret
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: f.ns, Name: before.SecretName}, &keysAfter); err != nil {
		t.Fatal(err)
	}
	for k, v := range keysBefore.Data {
		if string(keysAfter.Data[k]) != string(v) {
			t.Errorf("the upgrade changed %s of the signing-key Secret", k)
		}
	}
	everyAgentAnswers(t, f, "a user's token from before the upgrade", user, http.StatusOK)
	everyAgentAnswers(t, f, "the AccessToken's token from before the upgrade", machine, http.StatusOK)
	// What must hold is that the token from before still works (above). Whether the
	// controller re-mints the Secret's token around a restart is its own renewal decision; it
	// did in one run of five, so it is logged rather than asserted until that is understood.
	if accessToken(t, f) != machine {
		t.Log("the AccessToken's Secret holds a new token after the upgrade")
	}
	everyAgentAnswers(t, f, "a token after the upgrade", login(t, f, "bob"), http.StatusOK)

	// Uninstall: the fleet's processes end with their pods.
	for _, a := range f.agents {
		a.stop()
	}
	f.controller.stop()
	helm(t, "uninstall", "camfleet", "-n", releaseNamespace, "--wait", "--timeout", "2m")
	// kubectl fails the test if any of the three is gone.
	kubectl(t, "get", "crd", "tokenpolicies.camfleet.io", "cameras.camfleet.io", "accesstokens.camfleet.io")
	type kept struct {
		obj  client.Object
		name string
	}
	keep := []kept{{&camv1.TokenPolicy{}, "home"}, {&camv1.AccessToken{}, "nvr"}, {&corev1.Secret{}, "nvr-token"}, {&corev1.Secret{}, before.SecretName}, {&corev1.Secret{}, "users"}}
	for _, cam := range f.cameraOf {
		keep = append(keep, kept{&camv1.Camera{}, cam})
	}
	for _, k := range keep {
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: f.ns, Name: k.name}, k.obj); err != nil {
			t.Errorf("%T %s after helm uninstall: %v", k.obj, k.name, err)
		}
	}
	testkit.Eventually(t, settle, "the release's pods to be gone", func() (bool, string) {
		var pods corev1.PodList
		if err := env.Client.List(ctx, &pods, client.InNamespace(releaseNamespace)); err != nil {
			return false, err.Error()
		}
		return len(pods.Items) == 0, fmt.Sprintf("%d pods left", len(pods.Items))
	})
}
