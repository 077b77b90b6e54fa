package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"text/template"

	"sigs.k8s.io/yaml"
)

// TestKrewManifestRendersToAValidPlugin renders plugins/krew/camfleet.yaml as krew-release-bot
// does (addURIAndSha with a stand-in checksum) and checks what krew's index requires of it.
func TestKrewManifestRendersToAValidPlugin(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(env.RepoRoot, "plugins", "krew", "camfleet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const tag = "v1.2.3"
	tmpl, err := template.New("krew").Funcs(template.FuncMap{"addURIAndSha": func(uri, tag string) (string, error) {
		var b bytes.Buffer
		if err := template.Must(template.New("uri").Parse(uri)).Execute(&b, map[string]string{"TagName": tag}); err != nil {
			return "", err
		}
		return "uri: " + b.String() + "\n    sha256: " + strings.Repeat("0123456789abcdef", 4), nil
	}}).Parse(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, map[string]string{"TagName": tag}); err != nil {
		t.Fatal(err)
	}
	var m struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Spec struct {
			Version          string `json:"version"`
			Homepage         string `json:"homepage"`
			ShortDescription string `json:"shortDescription"`
			Description      string `json:"description"`
			Caveats          string `json:"caveats"`
			Platforms        []struct {
				Selector struct {
					MatchLabels map[string]string `json:"matchLabels"`
				} `json:"selector"`
				URI    string `json:"uri"`
				Sha256 string `json:"sha256"`
				Bin    string `json:"bin"`
			} `json:"platforms"`
		} `json:"spec"`
	}
	if err := yaml.UnmarshalStrict(out.Bytes(), &m); err != nil {
		t.Fatalf("rendered manifest: %v\n%s", err, out.String())
	}
	if m.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || m.Kind != "Plugin" || m.Metadata.Name != "camfleet" ||
		m.Spec.Version != tag || m.Spec.Homepage == "" || m.Spec.ShortDescription == "" || m.Spec.Description == "" || len(m.Spec.Platforms) < 5 {
		t.Errorf("manifest %+v", m)
	}
	seen := map[string]bool{}
	for _, p := range m.Spec.Platforms {
		os, arch := p.Selector.MatchLabels["os"], p.Selector.MatchLabels["arch"]
		want := "kubectl-camfleet"
		if os == "windows" {
			want += ".exe"
		}
		if seen[os+"/"+arch] || p.Bin != want || !strings.Contains(p.URI, "/"+tag+"/") || !strings.Contains(p.URI, "_"+os+"_"+arch+".") ||
			!regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(p.Sha256) {
			t.Errorf("platform %s/%s: %+v", os, arch, p)
		}
		seen[os+"/"+arch] = true
	}
}
