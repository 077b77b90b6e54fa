package chart

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

// TestChartRendersTheAgent: the agent DaemonSet runs only on labelled camera nodes, non-root
// with a read-only root filesystem, knows its node, authenticates with a projected pod-bound
// token, keeps its state on the node and reaches cameras the way agent.devices.mode says; its
// role is exactly the generated one, without Secrets or ConfigMaps.
func TestChartRendersTheAgent(t *testing.T) {
	docs := render(t)
	var role rbacv1.ClusterRole
	if !find(t, docs, "ClusterRole", "camfleet-agent", "", &role) || !sameRules(role.Rules, generatedRules(t, "config/rbac/agent/role.yaml")) {
		t.Errorf("ClusterRole camfleet-agent: rules %v differ from the generated ones", role.Rules)
	}
	for _, r := range role.Rules {
		if slices.Contains(r.Resources, "secrets") || slices.Contains(r.Resources, "configmaps") {
			t.Errorf("the agent may %v %v", r.Verbs, r.Resources)
		}
	}
	var ds appsv1.DaemonSet
	if !find(t, docs, "DaemonSet", "camfleet-agent", "camfleet-system", &ds) {
		t.Fatal("no agent DaemonSet")
	}
	pod := ds.Spec.Template.Spec
	c := pod.Containers[0]
	if pod.NodeSelector["camfleet.io/camera-node"] != "true" {
		t.Errorf("nodeSelector %v", pod.NodeSelector)
	}
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot ||
		c.SecurityContext == nil || !*c.SecurityContext.ReadOnlyRootFilesystem || *c.SecurityContext.AllowPrivilegeEscalation || c.SecurityContext.Privileged != nil {
		t.Errorf("security contexts: pod %+v, container %+v", pod.SecurityContext, c.SecurityContext)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			env[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	if env["NODE_NAME"] != "spec.nodeName" {
		t.Errorf("NODE_NAME is %q, want the downward API's spec.nodeName", env["NODE_NAME"])
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the default token is automounted; the agent must use its projected, pod-bound one")
	}
	var projected, state bool
	for _, v := range pod.Volumes {
		if v.Projected != nil && slices.ContainsFunc(v.Projected.Sources, func(s corev1.VolumeProjection) bool { return s.ServiceAccountToken != nil }) {
			projected = true
		}
		if v.HostPath != nil && v.HostPath.Path == "/var/lib/camfleet" {
			state = true
		}
	}
	if !projected || !state {
		t.Errorf("volumes %+v: want a projected ServiceAccount token and the hostPath state directory", pod.Volumes)
	}
	if !slices.Contains(c.Args, "--state-dir=/var/lib/camfleet") || c.Ports[0].HostPort != 8090 {
		t.Errorf("args %v, ports %+v", c.Args, c.Ports)
	}
	if q := c.Resources.Limits[corev1.ResourceName("squat.ai/video")]; q.Value() != 1 {
		t.Errorf("devicePlugin mode requests %v of squat.ai/video, want 1", q.String())
	}
	if len(pod.InitContainers) != 1 || !slices.Contains(pod.InitContainers[0].Args, "--prepare-state-dir=65532:65532") ||
		!slices.Equal(pod.InitContainers[0].SecurityContext.Capabilities.Add, []corev1.Capability{"CHOWN"}) {
		t.Errorf("init containers %+v", pod.InitContainers)
	}

	// The other device and network modes.
	docs = render(t, "--set", "agent.devices.mode=privileged", "--set", "agent.network.mode=hostNetwork")
	ds = appsv1.DaemonSet{}
	find(t, docs, "DaemonSet", "camfleet-agent", "camfleet-system", &ds)
	c = ds.Spec.Template.Spec.Containers[0]
	if !ds.Spec.Template.Spec.HostNetwork || c.SecurityContext.Privileged == nil || !*c.SecurityContext.Privileged || c.Ports[0].HostPort != 0 {
		t.Errorf("privileged, hostNetwork: hostNetwork %v, container %+v, ports %+v", ds.Spec.Template.Spec.HostNetwork, c.SecurityContext, c.Ports)
	}
	docs = render(t, "--set", "agent.devices.mode=none", "--set", "agent.network.mode=none")
	ds = appsv1.DaemonSet{}
	find(t, docs, "DaemonSet", "camfleet-agent", "camfleet-system", &ds)
	c = ds.Spec.Template.Spec.Containers[0]
	if len(c.Resources.Limits) != 1 || c.Ports[0].HostPort != 0 {
		t.Errorf("none, none: limits %v, ports %+v", c.Resources.Limits, c.Ports)
	}
	docs = render(t, "--set", "agent.enabled=false")
	if find(t, docs, "DaemonSet", "camfleet-agent", "camfleet-system", &ds) {
		t.Error("agent.enabled=false still renders the DaemonSet")
	}
}

// TestChartRefusesBadValues: values.schema.json turns a wrong value into an install error that
// names the value.
func TestChartRefusesBadValues(t *testing.T) {
	path, err := exec.Command(filepath.Join(env.RepoRoot, "hack", "tools.sh"), "helm").Output()
	if err != nil {
		t.Fatalf("hack/tools.sh helm: %v", err)
	}
	bin := strings.TrimSpace(string(path))
	for _, tc := range []struct{ set, want string }{
		{"agent.network.mode=bridge", "/agent/network/mode"},
		{"agent.devices.mode=root", "/agent/devices/mode"},
		{"agent.port=0", "/agent/port"},
		{"controller.replicas=0", "/controller/replicas"},
		{"tokenService.service.type=Bogus", "/tokenService/service/type"},
		{"controller.tokenServicURL=https://x", "tokenServicURL"},
		{"agent.stateDir.hostPath=relative", "/agent/stateDir/hostPath"},
	} {
		cmd := exec.Command(bin, "template", "cf", filepath.Join(env.RepoRoot, "charts", "camfleet"), "--kube-version", "1.37.2", "--set", tc.set)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("--set %s: %v, %s; want an error naming %s", tc.set, err, out, tc.want)
		}
	}
}
