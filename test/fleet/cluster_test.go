package fleet

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/camfleet/camfleet/internal/testkit"
)

// releaseNamespace is where the chart goes: the node fence it renders names the agent's
// ServiceAccount in the release namespace.
const releaseNamespace = "camfleet-system"

// Labels, annotations and taints as KWOK documents them for its simulated nodes, and the
// chart's camera-node label.
const (
	kwokAnnotation  = "kwok.x-k8s.io/node"
	cameraNodeLabel = "camfleet.io/camera-node"
	videoResource   = "squat.ai/video"
	helmKubeVersion = "1.37.2"
	settle          = 60 * time.Second
	rolloutTimeout  = 2 * time.Minute
)

// piNodes creates n simulated arm64 nodes named pi-00, pi-01...; those for which camera says
// so carry the camera-node label and one squat.ai/video device, as a Pi with a camera and the
// generic device plugin would. It returns the camera nodes' names.
func piNodes(t *testing.T, n int, camera func(i int) bool) []string {
	t.Helper()
	ctx := context.Background()
	var cams []string
	for i := range n {
		node := &corev1.Node{}
		node.Name = fmt.Sprintf("pi-%02d", i)
		node.Labels = map[string]string{"kubernetes.io/arch": "arm64", "kubernetes.io/os": "linux", "kubernetes.io/hostname": node.Name, "type": "kwok"}
		node.Annotations = map[string]string{kwokAnnotation: "fake", "node.alpha.kubernetes.io/ttl": "0"}
		node.Spec.Taints = []corev1.Taint{{Key: kwokAnnotation, Value: "fake", Effect: corev1.TaintEffectNoSchedule}}
		// A Raspberry Pi 5: 4 cores, 8 GiB.
		capacity := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("110")}
		if camera(i) {
			node.Labels[cameraNodeLabel] = "true"
			capacity[videoResource] = resource.MustParse("1")
			cams = append(cams, node.Name)
		}
		// Nodes keep the status they are created with; KWOK fills in the rest.
		node.Status.Capacity, node.Status.Allocatable = capacity, capacity
		if err := env.Client.Create(ctx, node); err != nil {
			t.Fatalf("create node %s: %v", node.Name, err)
		}
	}
	return cams
}

// helm runs the cached helm against the test API server.
func helm(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := tool(env.RepoRoot, "helm")
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Dir = env.RepoRoot
	cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig, "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// kubectl runs the kubectl that matches the API server, as the admin.
func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(env.Kubectl(), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// podsOf lists the pods a workload's selector matches.
func podsOf(ctx context.Context, ns string, selector *metav1.LabelSelector) ([]corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil {
		return nil, err
	}
	var pods corev1.PodList
	if err := env.Client.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, err
	}
	return pods.Items, nil
}

// readyPods are the pods of a selector that are Running and Ready and not being deleted.
func readyPods(ctx context.Context, ns string, selector *metav1.LabelSelector) ([]corev1.Pod, error) {
	pods, err := podsOf(ctx, ns, selector)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(pods, func(p corev1.Pod) bool {
		return p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning || !podReady(&p)
	}), nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// awaitRollout waits until the Deployment has rolled out its current template: every replica
// updated, available and ready, and no older pod left.
func awaitRollout(t *testing.T, name string) *appsv1.Deployment {
	t.Helper()
	ctx := context.Background()
	d := &appsv1.Deployment{}
	testkit.Eventually(t, rolloutTimeout, "Deployment "+name+" to roll out", func() (bool, string) {
		if err := checkRunning(); err != nil {
			t.Fatal(err)
		}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: name}, d); err != nil {
			return false, err.Error()
		}
		want := ptr.Deref(d.Spec.Replicas, 1)
		s := d.Status
		if s.ObservedGeneration != d.Generation || s.UpdatedReplicas != want || s.ReadyReplicas != want || s.AvailableReplicas != want || s.Replicas != want {
			return false, fmt.Sprintf("generation %d, status %+v", d.Generation, s)
		}
		pods, err := podsOf(ctx, releaseNamespace, d.Spec.Selector)
		if err != nil {
			return false, err.Error()
		}
		if len(pods) != int(want) {
			return false, fmt.Sprintf("%d pods, want %d", len(pods), want)
		}
		return true, ""
	})
	return d
}

// awaitDaemonSet waits until the agent DaemonSet runs exactly one ready, current pod on each of
// nodes and none anywhere else, and returns the pods by node.
func awaitDaemonSet(t *testing.T, nodes []string) map[string]corev1.Pod {
	t.Helper()
	ctx := context.Background()
	ds := &appsv1.DaemonSet{}
	byNode := map[string]corev1.Pod{}
	testkit.Eventually(t, rolloutTimeout, "the agent DaemonSet on exactly the camera nodes", func() (bool, string) {
		if err := checkRunning(); err != nil {
			t.Fatal(err)
		}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: "camfleet-agent"}, ds); err != nil {
			return false, err.Error()
		}
		n := int32(len(nodes))
		s := ds.Status
		if s.ObservedGeneration != ds.Generation || s.DesiredNumberScheduled != n || s.CurrentNumberScheduled != n || s.NumberReady != n ||
			s.UpdatedNumberScheduled != n || s.NumberMisscheduled != 0 {
			return false, fmt.Sprintf("generation %d, status %+v", ds.Generation, s)
		}
		pods, err := podsOf(ctx, releaseNamespace, ds.Spec.Selector)
		if err != nil {
			return false, err.Error()
		}
		clear(byNode)
		var where []string
		for _, p := range pods {
			where = append(where, p.Spec.NodeName)
			byNode[p.Spec.NodeName] = p
		}
		slices.Sort(where)
		if !slices.Equal(where, nodes) {
			return false, fmt.Sprintf("pods on %v, want one on each of %v", where, nodes)
		}
		for _, p := range pods {
			if p.Status.Phase != corev1.PodRunning || !podReady(&p) || p.DeletionTimestamp != nil {
				return false, fmt.Sprintf("pod %s on %s is %s", p.Name, p.Spec.NodeName, p.Status.Phase)
			}
		}
		return true, ""
	})
	return byNode
}

// podIdentity asks the TokenRequest API for a token of the pod's ServiceAccount bound to the
// pod, as the kubelet does for a projected token volume: the API server puts the pod and its
// node into the token, and a token of a deleted pod stops working. It returns a kubeconfig
// in dir that authenticates with that token and nothing else.
func podIdentity(t *testing.T, dir string, pod *corev1.Pod) string {
	t.Helper()
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: ptr.To[int64](3600),
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	tr, err := cs.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(context.Background(), pod.Spec.ServiceAccountName, req, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for %s bound to pod %s: %v", pod.Spec.ServiceAccountName, pod.Name, err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: env.Config.Host, CertificateAuthorityData: env.Config.CAData}
	cfg.AuthInfos["pod"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	cfg.Contexts["pod"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "pod"}
	cfg.CurrentContext = "pod"
	path := filepath.Join(dir, pod.Name+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// component is one of the chart's pods played by its real binary on this machine, with the
// arguments the chart gave the pod, the test's own addresses and files after them (the last
// of a repeated flag wins), and the pod's bound token as its only credential.
type component struct {
	*process
	pod        corev1.Pod
	kubeconfig string
}

// The process outlives the step that starts it: it ends when owner (the whole test) does.
func runComponent(t *testing.T, owner testing.TB, bin string, pod corev1.Pod, extra ...string) *component {
	t.Helper()
	var c corev1.Container
	for _, ct := range pod.Spec.Containers {
		c = ct
	}
	kc := podIdentity(t, owner.TempDir(), &pod)
	args := append(slices.Clone(c.Args), "--kubeconfig="+kc)
	args = append(args, extra...)
	p, err := startProcess(pod.Name, bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	comp := &component{process: p, pod: pod, kubeconfig: kc}
	owner.Cleanup(func() {
		comp.stop()
		if owner.Failed() {
			owner.Logf("--- %s (%s) output:\n%s", pod.Name, filepath.Base(bin), tail(comp.logs.String(), 60))
		}
	})
	return comp
}

// selectorOf is a Deployment's pod selector as a labels.Selector, for messages.
func selectorOf(d *appsv1.Deployment) labels.Selector {
	sel, _ := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	return sel
}
