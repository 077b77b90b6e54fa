package v1alpha1_test

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

const baseCamera = `
apiVersion: camfleet.io/v1alpha1
kind: Camera
metadata: {name: cam}
spec:
  nodeName: pi-1
  source:
    type: V4L2
    v4l2: {device: /dev/video0, pixelFormat: YUYV}
    width: 640
    height: 480
    fps: 15
  motion:
    masks: [{left: 0, top: 0, width: 500, height: 100}]
`

const baseTestPatternCamera = `
apiVersion: camfleet.io/v1alpha1
kind: Camera
metadata: {name: cam}
spec:
  nodeName: pi-1
  source:
    type: TestPattern
    testPattern: {motionEvery: 30s, motionDuration: 5s}
`

const basePolicy = `
apiVersion: camfleet.io/v1alpha1
kind: TokenPolicy
metadata: {name: tp}
spec:
  algorithm: EdDSA
  rotation: {period: 720h, publishAhead: 10m}
  tokens: {accessTTL: 15m, refreshTTL: 720h}
  roles:
    - {name: viewer, permissions: ["camera:stream,snapshot:*"]}
    - {name: admin, permissions: ["*"]}
  users:
    - {name: alice, roles: [admin], passwordSecretRef: {name: users, key: alice}}
  externalIssuers:
    - {issuer: "https://ha.local", publicKeys: ["-----BEGIN PUBLIC KEY-----"], roles: [viewer]}
`

const baseAccessToken = `
apiVersion: camfleet.io/v1alpha1
kind: AccessToken
metadata: {name: atok}
spec:
  policyName: tp
  subject: worker
  ttl: 24h
  renewBefore: 1h
  secretName: worker-token
`

// object decodes a YAML manifest into an unstructured object and applies edits to it, each
// a path (dot-separated, [n] for a list index) and a value; a nil value deletes the field.
func object(t *testing.T, manifest string, edits ...edit) *unstructured.Unstructured {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(manifest), &m); err != nil {
		t.Fatalf("decode manifest: %v", err)
	}
	for _, e := range edits {
		e.apply(t, m)
	}
	return &unstructured.Unstructured{Object: m}
}

type edit struct {
	path  string
	value any
}

func set(path string, value any) edit { return edit{path, value} }
func del(path string) edit            { return edit{path, nil} }

func (e edit) apply(t *testing.T, m map[string]any) {
	t.Helper()
	parts := strings.Split(e.path, ".")
	var cur any = m
	for i, p := range parts {
		last := i == len(parts)-1
		name, idx := p, -1
		if j := strings.IndexByte(p, '['); j >= 0 {
			name = p[:j]
			idx = int(p[j+1] - '0')
		}
		obj := cur.(map[string]any)
		if idx < 0 {
			if last {
				if e.value == nil {
					delete(obj, name)
				} else {
					obj[name] = e.value
				}
				return
			}
			if _, ok := obj[name]; !ok {
				obj[name] = map[string]any{}
			}
			cur = obj[name]
			continue
		}
		list := obj[name].([]any)
		if last {
			list[idx] = e.value
			return
		}
		cur = list[idx]
	}
}

// TestInvalidObjectsAreRefused creates each object against the real API server and checks the
// refusal names the offending field and says what is wrong in words.
func TestInvalidObjectsAreRefused(t *testing.T) {
	ns := env.Namespace(t)
	masks17 := make([]any, 17)
	for i := range masks17 {
		masks17[i] = map[string]any{"left": 0, "top": 0, "width": 10, "height": 10}
	}
	cases := []struct {
		name  string
		obj   *unstructured.Unstructured
		field string
		words string
	}{
		// Camera
		{"camera without a source", object(t, baseCamera, del("spec.source.v4l2")), "spec.source", "exactly one of v4l2, testPattern or mjpegURL must be set"},
		{"camera with two sources", object(t, baseCamera, set("spec.source.testPattern", map[string]any{})), "spec.source", "exactly one of v4l2, testPattern or mjpegURL must be set"},
		{"camera type names another source", object(t, baseCamera, set("spec.source.type", "MJPEGURL")), "spec.source.type", "type must name the source that is set"},
		{"camera with an unknown source type", object(t, baseCamera, set("spec.source.type", "RTSP")), "spec.source.type", `Unsupported value: "RTSP"`},
		{"camera without nodeName", object(t, baseCamera, del("spec.nodeName")), "spec.nodeName", "Required value"},
		{"camera width too small", object(t, baseCamera, set("spec.source.width", 100)), "spec.source.width", "greater than or equal to 160"},
		{"camera height too large", object(t, baseCamera, set("spec.source.height", 5000)), "spec.source.height", "less than or equal to 3072"},
		{"camera fps zero", object(t, baseCamera, set("spec.source.fps", 0)), "spec.source.fps", "greater than or equal to 1"},
		{"camera fps too high", object(t, baseCamera, set("spec.source.fps", 240)), "spec.source.fps", "less than or equal to 60"},
		{"camera odd width for YUYV", object(t, baseCamera, set("spec.source.width", 641)), "spec.source.width", "width must be even for YUYV"},
		{"camera device outside /dev", object(t, baseCamera, set("spec.source.v4l2.device", "/etc/passwd")), "spec.source.v4l2.device", "must be a device path under /dev"},
		{"camera device path traversal", object(t, baseCamera, set("spec.source.v4l2.device", "/dev/../etc/shadow")), "spec.source.v4l2.device", "must be a device path under /dev"},
		{"camera unknown pixel format", object(t, baseCamera, set("spec.source.v4l2.pixelFormat", "H264")), "spec.source.v4l2.pixelFormat", `Unsupported value: "H264"`},
		{"camera mjpegURL not http", object(t, baseCamera, set("spec.source.type", "MJPEGURL"), del("spec.source.v4l2"), set("spec.source.mjpegURL", "ftp://cam/stream")), "spec.source.mjpegURL", "must be an absolute http or https URL"},
		{"camera threshold zero", object(t, baseCamera, set("spec.motion.threshold", 0)), "spec.motion.threshold", "greater than or equal to 1"},
		{"camera threshold above 255", object(t, baseCamera, set("spec.motion.threshold", 256)), "spec.motion.threshold", "less than or equal to 255"},
		{"camera min area above the frame", object(t, baseCamera, set("spec.motion.minAreaPerMille", 1001)), "spec.motion.minAreaPerMille", "less than or equal to 1000"},
		{"camera consecutive frames zero", object(t, baseCamera, set("spec.motion.consecutiveFrames", 0)), "spec.motion.consecutiveFrames", "greater than or equal to 1"},
		{"camera event gap not a duration", object(t, baseCamera, set("spec.motion.eventGap", "ten seconds")), "spec.motion.eventGap", "must be a duration of at most 1h"},
		{"camera mask past the right edge", object(t, baseCamera, set("spec.motion.masks[0]", map[string]any{"left": 800, "top": 0, "width": 300, "height": 100})), "spec.motion.masks[0].width", "mask must lie inside the frame: left + width must be at most 1000"},
		{"camera mask past the bottom edge", object(t, baseCamera, set("spec.motion.masks[0]", map[string]any{"left": 0, "top": 950, "width": 10, "height": 100})), "spec.motion.masks[0].height", "top + height must be at most 1000"},
		{"camera mask negative", object(t, baseCamera, set("spec.motion.masks[0]", map[string]any{"left": -1, "top": 0, "width": 10, "height": 10})), "spec.motion.masks[0].left", "greater than or equal to 0"},
		{"camera too many masks", object(t, baseCamera, set("spec.motion.masks", masks17)), "spec.motion.masks", "must have at most 16 items"},
		{"camera test pattern motion longer than its period", object(t, baseTestPatternCamera, set("spec.source.testPattern.motionDuration", "40s")), "spec.source.testPattern.motionDuration", "motionDuration must be shorter than motionEvery"},
		{"camera stream without clients", object(t, baseCamera, set("spec.stream", map[string]any{"maxClients": 0})), "spec.stream.maxClients", "greater than or equal to 1"},
		// TokenPolicy
		{"policy HMAC algorithm", object(t, basePolicy, set("spec.algorithm", "HS256")), "spec.algorithm", `Unsupported value: "HS256"`},
		{"policy rotation not longer than publishAhead", object(t, basePolicy, set("spec.rotation.period", "5m")), "spec.rotation.period", "period must be longer than publishAhead"},
		{"policy rotation period not a duration", object(t, basePolicy, set("spec.rotation.period", "30d")), "spec.rotation.period", "must be a duration of at least 1m"},
		{"policy refresh shorter than access", object(t, basePolicy, set("spec.tokens.refreshTTL", "10m")), "spec.tokens.refreshTTL", "refreshTTL must not be shorter than accessTTL"},
		{"policy non-expiring access without permission", object(t, basePolicy, set("spec.tokens.accessTTL", "0")), "spec.tokens.accessTTL", "accessTTL may be 0 (tokens that never expire) only when allowNonExpiring is true"},
		{"policy access longer than max", object(t, basePolicy, set("spec.tokens.accessTTL", "800h"), set("spec.tokens.refreshTTL", "900h")), "spec.tokens.accessTTL", "accessTTL must not be longer than maxTTL"},
		{"policy leeway too large", object(t, basePolicy, set("spec.tokens.leeway", "10m")), "spec.tokens.leeway", "at most 5m"},
		{"policy duplicate role names", object(t, basePolicy, set("spec.roles[1]", map[string]any{"name": "viewer", "permissions": []any{"*"}})), "spec.roles[1]", "Duplicate value"},
		{"policy user with an undefined role", object(t, basePolicy, set("spec.users[0].roles", []any{"owner"})), "spec.users", "every role named in users[].roles must be defined in roles"},
		{"policy external issuer with an undefined role", object(t, basePolicy, set("spec.externalIssuers[0].roles", []any{"owner"})), "spec.externalIssuers", "every role named in externalIssuers[].roles must be defined in roles"},
		{"policy malformed permission", object(t, basePolicy, set("spec.roles[0].permissions", []any{"camera stream"})), "spec.roles[0].permissions[0]", "must be a permission such as camera:stream:cams/backyard"},
		{"policy RSA key too small", object(t, basePolicy, set("spec.algorithm", "RS256"), set("spec.rsaKeyBits", 1024)), "spec.rsaKeyBits", "greater than or equal to 2048"},
		{"policy RSA size for an EdDSA policy", object(t, basePolicy, set("spec.rsaKeyBits", 3072)), "spec.rsaKeyBits", "rsaKeyBits applies only when algorithm is RS256"},
		{"policy issuer not a URL", object(t, basePolicy, set("spec.issuer", "my issuer")), "spec.issuer", "must be an absolute http or https URL"},
		{"policy empty audience", object(t, basePolicy, set("spec.audience", []any{})), "spec.audience", "at least 1 items"},
		{"policy external issuer with two key sources", object(t, basePolicy, set("spec.externalIssuers[0].jwksConfigMapRef", map[string]any{"name": "jwks"})), "spec.externalIssuers[0]", "set exactly one of publicKeys or jwksConfigMapRef"},
		{"policy user without password", object(t, basePolicy, del("spec.users[0].passwordSecretRef")), "spec.users[0].passwordSecretRef", "Required value"},
		// AccessToken
		{"token zero ttl without nonExpiring", object(t, baseAccessToken, set("spec.ttl", "0s")), "spec.ttl", "ttl must be greater than 0; a token that never expires needs nonExpiring: true"},
		{"token negative ttl", object(t, baseAccessToken, set("spec.ttl", "-1h")), "spec.ttl", "must be a duration such as 24h"},
		{"token nonExpiring with a ttl", object(t, baseAccessToken, set("spec.nonExpiring", true)), "spec.ttl", "ttl must be unset or 0 when nonExpiring is true"},
		{"token renews before it is issued", object(t, baseAccessToken, set("spec.renewBefore", "24h")), "spec.renewBefore", "renewBefore must be shorter than ttl"},
		{"token without secret", object(t, baseAccessToken, del("spec.secretName")), "spec.secretName", "Required value"},
		{"token secret name invalid", object(t, baseAccessToken, set("spec.secretName", "Worker_Token")), "spec.secretName", "must be a valid Secret name"},
		{"token without subject", object(t, baseAccessToken, del("spec.subject")), "spec.subject", "Required value"},
	}
	if len(cases) < 25 {
		t.Fatalf("the issue asks for at least 25 invalid objects, have %d", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.obj.SetNamespace(ns)
			err := env.Client.Create(context.Background(), tc.obj)
			if err == nil {
				t.Fatalf("the API server accepted an invalid %s", tc.obj.GetKind())
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.field+":") {
				t.Errorf("refusal does not name field %s:\n%s", tc.field, msg)
			}
			if !strings.Contains(msg, tc.words) {
				t.Errorf("refusal does not say %q:\n%s", tc.words, msg)
			}
		})
	}
}

// TestBaseObjectsAreValid guards the table above: every refusal must come from its edit, not
// from a base object that is invalid already.
func TestBaseObjectsAreValid(t *testing.T) {
	ns := env.Namespace(t)
	for _, m := range []string{baseCamera, baseTestPatternCamera, basePolicy, baseAccessToken} {
		o := object(t, m)
		o.SetNamespace(ns)
		o.SetGenerateName(o.GetName() + "-")
		o.SetName("")
		if err := env.Client.Create(context.Background(), o); err != nil {
			t.Errorf("base %s refused: %v", o.GetKind(), err)
		}
	}
}

func TestSecretNameIsImmutable(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	o := object(t, baseAccessToken)
	o.SetNamespace(ns)
	if err := env.Client.Create(ctx, o); err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedField(o.Object, "other-secret", "spec", "secretName"); err != nil {
		t.Fatal(err)
	}
	err := env.Client.Update(ctx, o)
	if err == nil || !strings.Contains(err.Error(), "spec.secretName:") || !strings.Contains(err.Error(), "secretName is immutable") {
		t.Fatalf("changing spec.secretName: want a refusal naming the field, got %v", err)
	}
}
