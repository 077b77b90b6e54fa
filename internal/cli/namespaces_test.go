package cli

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

func TestParseNamespaces(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		bad  bool
	}{
		{"", nil, false},
		{"cams", []string{"cams"}, false},
		{" cams , garden,,cams ", []string{"cams", "garden"}, false},
		{"cams,Garden", nil, true},
		{"cams,garden/x", nil, true},
		{"-cams", nil, true},
	} {
		got, err := ParseNamespaces("watch-namespaces", tc.in)
		if (err != nil) != tc.bad || !slices.Equal(got, tc.want) {
			t.Errorf("ParseNamespaces(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func TestPolicyIsWatched(t *testing.T) {
	home := types.NamespacedName{Namespace: "cams", Name: "home"}
	for _, tc := range []struct {
		policy     types.NamespacedName
		namespaces []string
		ok         bool
	}{
		{home, nil, true},
		{home, []string{"garden", "cams"}, true},
		{home, []string{"garden"}, false},
		{types.NamespacedName{}, []string{"garden"}, true},
	} {
		if err := PolicyIsWatched("default-token-policy", tc.policy, tc.namespaces); (err == nil) != tc.ok {
			t.Errorf("PolicyIsWatched(%s, %q) = %v, want ok %v", tc.policy, tc.namespaces, err, tc.ok)
		}
	}
}
