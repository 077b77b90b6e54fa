package chart

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/yaml"
)

// TestChartRendersTheNodeFence: the chart's agent node fence is config/admission's policy
// and binding, with the release namespace and agent.serviceAccountName in its user match, on
// by default and gone with agent.nodeFence.enabled=false.
func TestChartRendersTheNodeFence(t *testing.T) {
	const name = "camfleet-agent-node-fence"
	var want admissionv1.ValidatingAdmissionPolicy
	var wantBinding admissionv1.ValidatingAdmissionPolicyBinding
	for path, into := range map[string]any{"config/admission/agent-node-fence.yaml": &want, "config/admission/agent-node-fence-binding.yaml": &wantBinding} {
		raw, err := os.ReadFile(filepath.Join(env.RepoRoot, path))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.UnmarshalStrict(raw, into); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	if len(want.Spec.MatchConditions) != 1 || !strings.Contains(want.Spec.MatchConditions[0].Expression, "'system:serviceaccount:camfleet-system:camfleet-agent'") {
		t.Fatalf("config/admission's policy does not match the agent by user name: %+v", want.Spec.MatchConditions)
	}

	for _, c := range []struct {
		args []string
		user string
	}{
		{nil, "system:serviceaccount:camfleet-system:camfleet-agent"},
		{[]string{"--set", "agent.serviceAccountName=cam-agent"}, "system:serviceaccount:camfleet-system:cam-agent"},
		{[]string{"-n", "cams", "--set", "agent.serviceAccountName=cam-agent"}, "system:serviceaccount:cams:cam-agent"},
	} {
		docs := render(t, c.args...)
		var policy admissionv1.ValidatingAdmissionPolicy
		var binding admissionv1.ValidatingAdmissionPolicyBinding
		if !find(t, docs, "ValidatingAdmissionPolicy", name, "", &policy) || !find(t, docs, "ValidatingAdmissionPolicyBinding", name, "", &binding) {
			t.Fatalf("%v: no ValidatingAdmissionPolicy and binding %s", c.args, name)
		}
		expected := want.Spec.DeepCopy()
		expected.MatchConditions[0].Expression = strings.ReplaceAll(expected.MatchConditions[0].Expression, "system:serviceaccount:camfleet-system:camfleet-agent", c.user)
		if !reflect.DeepEqual(policy.Spec, *expected) {
			x, _ := yaml.Marshal(policy.Spec)
			y, _ := yaml.Marshal(expected)
			t.Errorf("%v: the chart's policy differs from config/admission's:\n%s\nwant:\n%s", c.args, x, y)
		}
		if !reflect.DeepEqual(binding.Spec, wantBinding.Spec) {
			t.Errorf("%v: the chart's binding %+v differs from config/admission's %+v", c.args, binding.Spec, wantBinding.Spec)
		}
		if policy.Labels["app.kubernetes.io/name"] != "camfleet" || binding.Labels["app.kubernetes.io/name"] != "camfleet" {
			t.Errorf("%v: policy labels %v, binding labels %v", c.args, policy.Labels, binding.Labels)
		}
	}

	for _, d := range render(t, "--set", "agent.nodeFence.enabled=false") {
		if strings.HasPrefix(d.Kind, "ValidatingAdmissionPolicy") {
			t.Errorf("agent.nodeFence.enabled=false still renders %s %s", d.Kind, d.Metadata.Name)
		}
	}
}
