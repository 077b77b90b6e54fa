package publication

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
)

func TestGoverningPolicy(t *testing.T) {
	def := types.NamespacedName{Namespace: "camfleet-system", Name: "default"}
	for _, tc := range []struct {
		name string
		ref  *camv1.PolicyReference
		want types.NamespacedName
	}{
		{"no reference: the default", nil, def},
		{"same namespace", &camv1.PolicyReference{Name: "home"}, types.NamespacedName{Namespace: "cams", Name: "home"}},
		{"another namespace", &camv1.PolicyReference{Name: "shared", Namespace: "ops"}, types.NamespacedName{Namespace: "ops", Name: "shared"}},
	} {
		cam := &camv1.Camera{}
		cam.Namespace, cam.Spec.TokenPolicyRef = "cams", tc.ref
		if got := GoverningPolicy(cam, def); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	cam := &camv1.Camera{}
	cam.Namespace = "cams"
	if got := GoverningPolicy(cam, types.NamespacedName{Name: "home"}); got != (types.NamespacedName{Namespace: "cams", Name: "home"}) {
		t.Errorf("a bare default: %v, want the camera namespace's own policy of that name", got)
	}
	if got := GoverningPolicy(cam, types.NamespacedName{}); got.Name != "" {
		t.Errorf("no default: %v", got)
	}
}

func TestFromStatus(t *testing.T) {
	p := &camv1.TokenPolicy{}
	if _, ok, err := FromStatus(p); ok || err != nil {
		t.Fatalf("nothing published: ok %v err %v", ok, err)
	}
	p.Status.Verification = &camv1.VerificationStatus{
		JWKS:            `{"keys":[]}`,
		RevokedTokenIDs: []string{"b", "a", "b"},
		ExternalIssuers: []camv1.ExternalIssuerStatus{{Issuer: "https://x", JWKS: `{"keys":[1]}`}, {Issuer: "https://none"}},
	}
	pub, ok, err := FromStatus(p)
	if !ok || err != nil {
		t.Fatalf("ok %v err %v", ok, err)
	}
	if string(pub.JWKS) != `{"keys":[]}` || string(pub.Revoked) != `["a","b"]` || string(pub.External["https://x"]) != `{"keys":[1]}` {
		t.Errorf("published %+v", pub)
	}
	if _, has := pub.External["https://none"]; has {
		t.Error("an unresolved issuer must have no keys")
	}
}

func TestPolicyOfConfigMap(t *testing.T) {
	for _, tc := range []struct {
		name, label, want string
	}{{"home-jwks", "home", "home"}, {"other", "home", ""}, {"home-jwks", "", ""}} {
		cm := &camv1.Camera{} // any object with name and labels
		cm.Name, cm.Labels = tc.name, map[string]string{LabelPolicy: tc.label}
		if got := PolicyOfConfigMap(cm); got != tc.want {
			t.Errorf("%s/%s: %q, want %q", tc.name, tc.label, got, tc.want)
		}
	}
}

// TestOwnsSessions: the session store is the policy's only with both camfleet's labels for
// that policy and an owner reference to its UID (the name of the reference does not count:
// a policy deleted and made again under the same name has a new UID).
func TestOwnsSessions(t *testing.T) {
	p := &camv1.TokenPolicy{}
	p.Name, p.UID = "home", "uid-home"
	ref := func(uid types.UID) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: camv1.GroupVersion.String(), Kind: "TokenPolicy", Name: "home", UID: uid}}
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		owners []metav1.OwnerReference
		want   bool
	}{
		{"labelled and owned", OwnedLabels("home"), ref("uid-home"), true},
		{"owned among other owners", OwnedLabels("home"), append(ref("uid-other"), ref("uid-home")...), true},
		{"extra labels do not matter", map[string]string{LabelManagedBy: ManagedBy, LabelPolicy: "home", "team": "ops"}, ref("uid-home"), true},
		{"no labels, no owner", nil, nil, false},
		{"labelled, no owner", OwnedLabels("home"), nil, false},
		{"owned, no labels", nil, ref("uid-home"), false},
		{"managed-by missing", map[string]string{LabelPolicy: "home"}, ref("uid-home"), false},
		{"labelled for another policy", OwnedLabels("barn"), ref("uid-home"), false},
		{"owned by an earlier policy of the same name", OwnedLabels("home"), ref("uid-old"), false},
	} {
		cm := &corev1.ConfigMap{}
		cm.Name, cm.Labels, cm.OwnerReferences = SessionsName("home"), tc.labels, tc.owners
		if got := OwnsSessions(p, cm); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
