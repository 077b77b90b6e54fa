package publication

import (
	"testing"

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
