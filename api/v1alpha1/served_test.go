package v1alpha1_test

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
)

// kubectl runs the kubectl that matches the test API server and returns its stdout.
func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(env.Kubectl(), append([]string{"--kubeconfig", env.Kubeconfig}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

// TestSamplesAreAccepted applies every sample with kubectl, as a user would, and reads each
// object back with its defaults filled in.
func TestSamplesAreAccepted(t *testing.T) {
	ns := env.Namespace(t)
	dir := filepath.Join(env.RepoRoot, "config", "samples")
	files, err := filepath.Glob(filepath.Join(dir, "camfleet_v1alpha1_*.yaml"))
	if err != nil || len(files) < 3 {
		t.Fatalf("want a sample per kind in %s, found %v (%v)", dir, files, err)
	}
	out := kubectl(t, "apply", "-n", ns, "-k", dir)
	for _, kind := range []string{"tokenpolicy", "camera", "accesstoken"} {
		if !strings.Contains(out, kind+".camfleet.io/") {
			t.Errorf("kubectl apply -k config/samples created no %s:\n%s", kind, out)
		}
	}
	ctx := context.Background()
	var cam camv1.Camera
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "test-pattern"}, &cam); err != nil {
		t.Fatal(err)
	}
	if cam.Spec.Motion.Threshold != 20 || cam.Spec.Motion.Enabled == nil || !*cam.Spec.Motion.Enabled || cam.Spec.Stream.MaxClients != 10 {
		t.Errorf("defaults not applied to the test-pattern camera: motion=%+v stream=%+v", cam.Spec.Motion, cam.Spec.Stream)
	}
	var tp camv1.TokenPolicy
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "home"}, &tp); err != nil {
		t.Fatal(err)
	}
	if tp.Spec.Rotation.Period.Duration.Hours() != 720 || len(tp.Spec.Users) != 2 {
		t.Errorf("sample policy read back wrong: %+v", tp.Spec)
	}
}

// TestMinimalObjectsGetDefaults checks a user can write very little and get sensible values.
func TestMinimalObjectsGetDefaults(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	tp := &camv1.TokenPolicy{}
	tp.Name, tp.Namespace = "minimal", ns
	if err := env.Client.Create(ctx, tp); err != nil {
		t.Fatal(err)
	}
	s := tp.Spec
	if s.Algorithm != camv1.AlgorithmEdDSA || !slices.Equal(s.Audience, []string{"camfleet"}) ||
		s.Rotation.Period.Duration.String() != "720h0m0s" || s.Rotation.PublishAhead.Duration.String() != "10m0s" ||
		s.Tokens.AccessTTL.Duration.String() != "15m0s" || s.Tokens.Leeway.Duration.String() != "30s" {
		t.Errorf("empty TokenPolicy defaults: %+v", s)
	}
	cam := &camv1.Camera{}
	cam.Name, cam.Namespace = "minimal", ns
	cam.Spec.NodeName = "pi-9"
	cam.Spec.Source = camv1.CameraSource{Type: camv1.SourceV4L2, V4L2: &camv1.V4L2Source{Device: "/dev/video0"}}
	if err := env.Client.Create(ctx, cam); err != nil {
		t.Fatal(err)
	}
	if cam.Spec.Source.Width != 640 || cam.Spec.Source.Height != 480 || cam.Spec.Source.FPS != 15 ||
		cam.Spec.Source.V4L2.PixelFormat != camv1.PixelFormatMJPEG || cam.Spec.Motion.ConsecutiveFrames != 3 {
		t.Errorf("minimal Camera defaults: %+v", cam.Spec)
	}
}

// TestCamerasSelectableByNode: an agent lists only its own node's cameras, server-side.
func TestCamerasSelectableByNode(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	for _, c := range []struct{ name, node string }{{"a", "pi-1"}, {"b", "pi-1"}, {"c", "pi-2"}, {"d", "pi-10"}} {
		cam := &camv1.Camera{}
		cam.Name, cam.Namespace = c.name, ns
		cam.Spec.NodeName = c.node
		cam.Spec.Source = camv1.CameraSource{Type: camv1.SourceTestPattern, TestPattern: &camv1.TestPatternSource{}}
		if err := env.Client.Create(ctx, cam); err != nil {
			t.Fatal(err)
		}
	}
	var list camv1.CameraList
	if err := env.Client.List(ctx, &list, client.InNamespace(ns), client.MatchingFields{"spec.nodeName": "pi-1"}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range list.Items {
		names = append(names, c.Name)
	}
	if !slices.Equal(names, []string{"a", "b"}) {
		t.Errorf("field selector spec.nodeName=pi-1 via the API returned %v, want [a b]", names)
	}
	out := kubectl(t, "get", "cameras", "-n", ns, "--field-selector", "spec.nodeName=pi-2", "-o", "name")
	if strings.TrimSpace(out) != "camera.camfleet.io/c" {
		t.Errorf("kubectl --field-selector spec.nodeName=pi-2 printed %q, want only camera c", out)
	}
}

// TestServedCRDs checks what kubectl users see: printer columns, short names, the camfleet
// category, and the selectable field.
func TestServedCRDs(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	want := map[string]struct {
		short   string
		columns []string
	}{
		"cameras":       {"cam", []string{"Node", "Source", "Resolution", "FPS", "Motion", "Ready", "Policy", "Message", "Age"}},
		"tokenpolicies": {"tp", []string{"Algorithm", "Active Key", "Last Rotation", "Next Rotation", "Agents", "Ready", "Message", "Age"}},
		"accesstokens":  {"atok", []string{"Policy", "Subject", "Expires", "Ready", "Message", "Age"}},
	}
	for plural, w := range want {
		crd := &unstructured.Unstructured{}
		crd.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
		if err := env.Client.Get(ctx, client.ObjectKey{Name: plural + ".camfleet.io"}, crd); err != nil {
			t.Fatalf("served CRD %s: %v", plural, err)
		}
		shorts, _, _ := unstructured.NestedStringSlice(crd.Object, "spec", "names", "shortNames")
		cats, _, _ := unstructured.NestedStringSlice(crd.Object, "spec", "names", "categories")
		if !slices.Equal(shorts, []string{w.short}) || !slices.Equal(cats, []string{"camfleet"}) {
			t.Errorf("%s: shortNames %v categories %v", plural, shorts, cats)
		}
		versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
		v := versions[0].(map[string]any)
		var cols []string
		for _, c := range v["additionalPrinterColumns"].([]any) {
			cols = append(cols, c.(map[string]any)["name"].(string))
		}
		if !slices.Equal(cols, w.columns) {
			t.Errorf("%s printer columns %v, want %v", plural, cols, w.columns)
		}
		if _, ok := v["subresources"].(map[string]any)["status"]; !ok {
			t.Errorf("%s has no status subresource", plural)
		}
		if plural == "cameras" {
			sel, _ := yaml.Marshal(v["selectableFields"])
			if !strings.Contains(string(sel), ".spec.nodeName") {
				t.Errorf("cameras selectableFields: %s", sel)
			}
		}
	}

	// What kubectl prints: the short names resolve, the columns head the table, and the
	// category lists every kind.
	cam := &camv1.Camera{}
	cam.Name, cam.Namespace = "porch", ns
	cam.Spec.NodeName = "pi-3"
	cam.Spec.Source = camv1.CameraSource{Type: camv1.SourceTestPattern, TestPattern: &camv1.TestPatternSource{}}
	tp := &camv1.TokenPolicy{}
	tp.Name, tp.Namespace = "porch", ns
	at := &camv1.AccessToken{Spec: camv1.AccessTokenSpec{PolicyName: "porch", Subject: "w", SecretName: "w"}}
	at.Name, at.Namespace = "porch", ns
	for _, o := range []client.Object{cam, tp, at} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	header := func(out string) string { return strings.Join(strings.Fields(strings.SplitN(out, "\n", 2)[0]), " ") }
	if h := header(kubectl(t, "get", "cam", "-n", ns)); h != "NAME NODE SOURCE RESOLUTION FPS MOTION READY AGE" {
		t.Errorf("kubectl get cam header: %q", h)
	}
	if h := header(kubectl(t, "get", "tp", "-n", ns)); h != "NAME ALGORITHM ACTIVE KEY LAST ROTATION NEXT ROTATION AGENTS READY AGE" {
		t.Errorf("kubectl get tp header: %q", h)
	}
	if h := header(kubectl(t, "get", "atok", "-n", ns, "-o", "wide")); h != "NAME POLICY SUBJECT EXPIRES READY MESSAGE AGE" {
		t.Errorf("kubectl get atok -o wide header: %q", h)
	}
	all := kubectl(t, "get", "camfleet", "-n", ns, "-o", "name")
	for _, n := range []string{"camera.camfleet.io/porch", "tokenpolicy.camfleet.io/porch", "accesstoken.camfleet.io/porch"} {
		if !strings.Contains(all, n) {
			t.Errorf("kubectl get camfleet does not list %s:\n%s", n, all)
		}
	}
}

// TestFutureTimesReadWell: kubectl renders a date column only for past times (a future one
// prints <invalid>), so an AccessToken's expiry and a policy's next rotation are shown as
// RFC 3339 times by the real kubectl.
func TestFutureTimesReadWell(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	future := metav1.NewTime(time.Now().Add(72 * time.Hour).UTC().Truncate(time.Second))
	past := metav1.NewTime(time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Second))
	tp := &camv1.TokenPolicy{}
	tp.Name, tp.Namespace = "house", ns
	at := &camv1.AccessToken{Spec: camv1.AccessTokenSpec{PolicyName: "house", Subject: "w", SecretName: "w"}}
	at.Name, at.Namespace = "worker", ns
	for _, o := range []client.Object{tp, at} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	tp.Status.NextRotationTime, tp.Status.LastRotationTime = &future, &past
	at.Status.ExpirationTime = &future
	for _, o := range []client.Object{tp, at} {
		if err := env.Client.Status().Update(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	want := future.Format(time.RFC3339)
	for _, kind := range []string{"tp/house", "atok/worker"} {
		out := kubectl(t, "get", kind, "-n", ns)
		if strings.Contains(out, "<invalid>") || !strings.Contains(out, want) {
			t.Errorf("kubectl get %s does not show the future time %s:\n%s", kind, want, out)
		}
	}
	// The past time stays a relative age.
	if out := kubectl(t, "get", "tp/house", "-n", ns); !strings.Contains(out, "120m") {
		t.Errorf("kubectl get tp does not show the last rotation as an age:\n%s", out)
	}
}
