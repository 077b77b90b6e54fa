// Package admission tests the admission policies camfleet ships in config/admission against
// the real API server: the same YAML files, applied as they are.
package admission

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// agentUser is the agent's ServiceAccount as config/admission names it.
const agentUser = "system:serviceaccount:camfleet-system:camfleet-agent"

// nodeNameExtra is the user-info extra a ServiceAccount token bound to a pod on a node carries.
const nodeNameExtra = "authentication.kubernetes.io/node-name"

// readYAML decodes a committed manifest into into.
func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(env.RepoRoot, path))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(raw, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// create creates obj with the admin client and deletes it when the test ends.
func create(t *testing.T, obj client.Object) {
	t.Helper()
	ctx := context.Background()
	if err := env.Client.Create(ctx, obj); err != nil {
		t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), obj) })
}

// agentClient acts as the agent's ServiceAccount with a token bound to node (none when node
// is empty), holding the agent's generated RBAC (granted by the test).
func agentClient(t *testing.T, node string) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: agentUser, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:camfleet-system", "system:authenticated"}}
	if node != "" {
		cfg.Impersonate.Extra = map[string][]string{nodeNameExtra: {node}}
	}
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// grant binds a ClusterRole to the agent's user for the test.
func grant(t *testing.T, role *rbacv1.ClusterRole) {
	t.Helper()
	create(t, role)
	bind := &rbacv1.ClusterRoleBinding{
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: agentUser}},
	}
	bind.Name = role.Name
	create(t, bind)
}

func camera(ns, name, node string) *camv1.Camera {
	c := &camv1.Camera{Spec: camv1.CameraSpec{NodeName: node, Source: camv1.CameraSource{
		Type: camv1.SourceType("TestPattern"), TestPattern: &camv1.TestPatternSource{}}}}
	c.Namespace, c.Name = ns, name
	return c
}

// patchStatus sets status.endpoint through the status subresource, as the agent does.
func patchStatus(c client.Client, ns, name, endpoint string) error {
	cam := &camv1.Camera{}
	cam.Namespace, cam.Name = ns, name
	patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"status":{"endpoint":%q}}`, endpoint))
	return c.Status().Patch(context.Background(), cam, patch)
}

// patch merge-patches the Camera itself.
func patch(c client.Client, ns, name, body string) error {
	cam := &camv1.Camera{}
	cam.Namespace, cam.Name = ns, name
	return c.Patch(context.Background(), cam, client.RawPatch(types.MergePatchType, []byte(body)))
}

// refused fails the test unless err is the API server's refusal carrying want.
func refused(t *testing.T, what string, err error, want string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: allowed, want refused with %q", what, want)
		return
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("%s: refused with %q, want a message containing %q", what, err, want)
	}
}

// TestAgentNodeFence applies config/admission and checks that the agent's ServiceAccount,
// even holding more RBAC than it is given, may write only the status of its own node's
// Cameras.
func TestAgentNodeFence(t *testing.T) {
	ctx := context.Background()

	// The API server must serve ValidatingAdmissionPolicies (GA since 1.30).
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	resources, err := dc.ServerResourcesForGroupVersion(admissionv1.SchemeGroupVersion.String())
	if err != nil {
		t.Fatalf("the API server does not serve %s: %v", admissionv1.SchemeGroupVersion, err)
	}
	served := false
	for _, r := range resources.APIResources {
		served = served || r.Name == "validatingadmissionpolicies"
	}
	if !served {
		t.Fatalf("the API server does not serve validatingadmissionpolicies in %s", admissionv1.SchemeGroupVersion)
	}

	// The shipped policy and binding, as they are.
	var policy admissionv1.ValidatingAdmissionPolicy
	var binding admissionv1.ValidatingAdmissionPolicyBinding
	readYAML(t, "config/admission/agent-node-fence.yaml", &policy)
	readYAML(t, "config/admission/agent-node-fence-binding.yaml", &binding)
	if binding.Spec.PolicyName != policy.Name {
		t.Fatalf("binding %s binds %q, not the policy %q", binding.Name, binding.Spec.PolicyName, policy.Name)
	}
	create(t, &policy)
	create(t, &binding)

	// The agent's generated RBAC, and, to show the fence holds where RBAC would not, the
	// right to patch and update Cameras themselves.
	var agentRole rbacv1.ClusterRole
	readYAML(t, "config/rbac/agent/role.yaml", &agentRole)
	grant(t, &agentRole)
	widen := &rbacv1.ClusterRole{Rules: []rbacv1.PolicyRule{{APIGroups: []string{camv1.GroupVersion.Group},
		Resources: []string{"cameras", "cameras/status"}, Verbs: []string{"update", "patch"}}}}
	widen.Name = "camfleet-agent-fence-test-widened"
	grant(t, widen)
	ns := env.Namespace(t)
	create(t, camera(ns, "front", "pi-1"))
	create(t, camera(ns, "back", "pi-2"))

	pi1, pi2, unbound := agentClient(t, "pi-1"), agentClient(t, "pi-2"), agentClient(t, "")

	// Policies take effect asynchronously: wait until a write the fence refuses is refused.
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
		err := patchStatus(pi1, ns, "back", "http://probe")
		return err != nil && strings.Contains(err.Error(), "may not write"), nil
	}); err != nil {
		t.Fatalf("the fence never refused pi-1's agent writing pi-2's Camera: %v", err)
	}

	// Its own Camera's status: allowed, through the status subresource as the agent writes it.
	if err := patchStatus(pi1, ns, "front", "http://pi-1:8090"); err != nil {
		t.Fatalf("agent on pi-1 patching the status of its own Camera: %v", err)
	}
	var front camv1.Camera
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "front"}, &front); err != nil || front.Status.Endpoint != "http://pi-1:8090" {
		t.Errorf("status of front after the agent's patch: endpoint %q, %v", front.Status.Endpoint, err)
	}
	if err := patchStatus(pi2, ns, "back", "http://pi-2:8090"); err != nil {
		t.Errorf("agent on pi-2 patching the status of its own Camera: %v", err)
	}

	// Another node's Camera: refused, saying whose.
	refused(t, "pi-1 patching the status of pi-2's Camera", patchStatus(pi1, ns, "back", "http://pi-1:8090"),
		"agent on node pi-1 may not write Camera "+ns+"/back of node pi-2")
	refused(t, "pi-1 taking pi-2's Camera", patch(pi1, ns, "back", `{"spec":{"nodeName":"pi-1"}}`),
		"agent on node pi-1 may not write Camera "+ns+"/back of node pi-2")

	// Its own Camera's spec and metadata: refused.
	refused(t, "pi-1 suspending its Camera", patch(pi1, ns, "front", `{"spec":{"suspend":true}}`),
		"agent on node pi-1 may not change the spec of Camera "+ns+"/front, only its status")
	refused(t, "pi-1 giving its Camera away", patch(pi1, ns, "front", `{"spec":{"nodeName":"pi-2"}}`),
		"agent on node pi-1 may not change the spec of Camera "+ns+"/front, only its status")
	const metadataRefusal = "may not change the labels, annotations, finalizers or owner references of Camera "
	refused(t, "pi-1 labelling its Camera", patch(pi1, ns, "front", `{"metadata":{"labels":{"x":"y"}}}`), metadataRefusal+ns+"/front")
	refused(t, "pi-1 annotating its Camera", patch(pi1, ns, "front", `{"metadata":{"annotations":{"x":"y"}}}`), metadataRefusal+ns+"/front")
	refused(t, "pi-1 adding a finalizer", patch(pi1, ns, "front", `{"metadata":{"finalizers":["example.com/x"]}}`), metadataRefusal+ns+"/front")

	// A token bound to no node: everything refused.
	const unboundRefusal = "agent " + agentUser + " may not write Camera "
	refused(t, "unbound token patching a status", patchStatus(unbound, ns, "front", "http://x"), unboundRefusal+ns+"/front")
	refused(t, "unbound token patching a status", patchStatus(unbound, ns, "back", "http://x"), unboundRefusal+ns+"/back")
	refused(t, "unbound token labelling", patch(unbound, ns, "front", `{"metadata":{"labels":{"x":"y"}}}`), unboundRefusal+ns+"/front")

	// Nothing changed, and everyone else is not fenced: the admin labels a Camera.
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "front"}, &front); err != nil {
		t.Fatal(err)
	}
	if front.Spec.Suspend || front.Spec.NodeName != "pi-1" || len(front.Labels) != 0 || len(front.Annotations) != 0 || len(front.Finalizers) != 0 {
		t.Errorf("a refused write changed Camera front: %+v %+v", front.ObjectMeta, front.Spec)
	}
	if err := patch(env.Client, ns, "front", `{"metadata":{"labels":{"x":"y"}}}`); err != nil {
		t.Errorf("the admin labelling a Camera: %v", err)
	}
}
