package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// fakeELF is the smallest executable header debug/elf accepts for machine, with a PT_INTERP
// program header when dynamic: enough for the checks, without compiling anything.
func fakeELF(t *testing.T, machine elf.Machine, dynamic bool) []byte {
	t.Helper()
	var phnum uint16
	if dynamic {
		phnum = 1
	}
	hdr := elf.Header64{
		Type: uint16(elf.ET_EXEC), Machine: uint16(machine), Version: uint32(elf.EV_CURRENT),
		Phoff: 64, Ehsize: 64, Phentsize: 56, Phnum: phnum,
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS], hdr.Ident[elf.EI_DATA], hdr.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	var buf bytes.Buffer
	must(t, binary.Write(&buf, binary.LittleEndian, hdr))
	if dynamic {
		must(t, binary.Write(&buf, binary.LittleEndian, elf.Prog64{Type: uint32(elf.PT_INTERP)}))
	}
	return buf.Bytes()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testBuilder() builder {
	return builder{
		repository: "ghcr.io/camfleet", version: "v1.2.3", revision: "abc123",
		source: "https://github.com/camfleet/camfleet", created: time.Unix(1700000000, 0).UTC(),
		caBundle: []byte("-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n"),
	}
}

func testBinaries(t *testing.T) []program {
	return []program{
		{name: "camfleet-agent", arch: "amd64", data: fakeELF(t, elf.EM_X86_64, false)},
		{name: "camfleet-agent", arch: "arm64", data: fakeELF(t, elf.EM_AARCH64, false)},
	}
}

// TestArchivesAreReproducible: the same binaries give byte-identical archives, so a rebuild
// from the same commit neither changes digests nor makes nodes fetch layers again.
func TestArchivesAreReproducible(t *testing.T) {
	b := testBuilder()
	dirs := []string{t.TempDir(), t.TempDir()}
	for _, dir := range dirs {
		if _, err := b.write(dir, testBinaries(t)); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"camfleet-agent.tar", "camfleet-agent-amd64.tar", "camfleet-agent-arm64.tar"} {
		first, err := os.ReadFile(filepath.Join(dirs[0], name))
		must(t, err)
		second, err := os.ReadFile(filepath.Join(dirs[1], name))
		must(t, err)
		if !bytes.Equal(first, second) {
			t.Errorf("%s differs between two builds of the same binaries", name)
		}
	}
}

// TestImagesRunTheBinaryAsNonroot: every image's config names its platform, runs the binary
// as the numeric non-root user, and carries the version labels; its layers hold the binary,
// the CA bundle and the user's passwd entry.
func TestImagesRunTheBinaryAsNonroot(t *testing.T) {
	b := testBuilder()
	dir := t.TempDir()
	if _, err := b.write(dir, testBinaries(t)); err != nil {
		t.Fatal(err)
	}
	idx := readLayout(t, filepath.Join(dir, "camfleet-agent.tar"))
	must(t, validate.Index(idx))
	m, err := idx.IndexManifest()
	must(t, err)
	if len(m.Manifests) != 2 {
		t.Fatalf("index has %d manifests, want amd64 and arm64", len(m.Manifests))
	}
	for i, want := range []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"}} {
		d := m.Manifests[i]
		if d.Platform == nil || !d.Platform.Equals(want) {
			t.Errorf("manifest %d has platform %v, want %v", i, d.Platform, want)
			continue
		}
		img, err := idx.Image(d.Digest)
		must(t, err)
		cfg, err := img.ConfigFile()
		must(t, err)
		if got := cfg.Platform(); !got.Equals(want) {
			t.Errorf("%s config platform %v", want.Architecture, got)
		}
		c := cfg.Config
		if strings.Join(c.Entrypoint, " ") != "/usr/local/bin/camfleet-agent" || c.User != "65532:65532" || len(c.Cmd) != 0 {
			t.Errorf("%s config runs %q as %q, want /usr/local/bin/camfleet-agent as 65532:65532", want.Architecture, c.Entrypoint, c.User)
		}
		if c.Labels["org.opencontainers.image.version"] != "v1.2.3" || c.Labels["org.opencontainers.image.revision"] != "abc123" {
			t.Errorf("%s labels %v", want.Architecture, c.Labels)
		}
		if !cfg.Created.Time.Equal(b.created) {
			t.Errorf("%s created %v, want the source date %v", want.Architecture, cfg.Created, b.created)
		}
		files := imageFiles(t, img)
		if !bytes.Equal(files["etc/ssl/certs/ca-certificates.crt"], b.caBundle) {
			t.Errorf("%s: the CA bundle is not the one given", want.Architecture)
		}
		if !strings.Contains(string(files["etc/passwd"]), "nonroot:x:65532:65532:") {
			t.Errorf("%s: /etc/passwd has no nonroot user:\n%s", want.Architecture, files["etc/passwd"])
		}
		if _, err := elf.NewFile(bytes.NewReader(files["usr/local/bin/camfleet-agent"])); err != nil {
			t.Errorf("%s: the binary is not in the image: %v", want.Architecture, err)
		}
	}
}

// TestArchivesNameTheImageForContainerd: index.json names the image in the annotation
// containerd's importer reads, and the per-architecture archive also carries the manifest.json
// of `docker save`, pointing at blobs it holds.
func TestArchivesNameTheImageForContainerd(t *testing.T) {
	dir := t.TempDir()
	written, err := testBuilder().write(dir, testBinaries(t))
	must(t, err)
	if len(written) != 3 {
		t.Fatalf("wrote %d archives, want 3", len(written))
	}
	for _, w := range written {
		entries := archiveEntries(t, w.path)
		var top v1.IndexManifest
		must(t, json.Unmarshal(entries["index.json"], &top))
		if len(top.Manifests) != 1 {
			t.Fatalf("%s: index.json lists %d entries, want 1", w.path, len(top.Manifests))
		}
		d := top.Manifests[0]
		if d.Annotations[annotationContainerdName] != "ghcr.io/camfleet/camfleet-agent:v1.2.3" || d.Annotations[annotationRefName] != "v1.2.3" {
			t.Errorf("%s: index.json names the image %v", w.path, d.Annotations)
		}
		if d.Digest != w.digest {
			t.Errorf("%s: index.json points at %s, reported %s", w.path, d.Digest, w.digest)
		}
		if string(entries["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
			t.Errorf("%s: oci-layout is %q", w.path, entries["oci-layout"])
		}
		_, hasDocker := entries["manifest.json"]
		if multi := filepath.Base(w.path) == "camfleet-agent.tar"; multi == hasDocker {
			t.Errorf("%s: manifest.json present: %v, want it only in per-architecture archives", w.path, hasDocker)
		}
		if hasDocker {
			var docker []struct {
				Config   string
				RepoTags []string
				Layers   []string
			}
			must(t, json.Unmarshal(entries["manifest.json"], &docker))
			if len(docker) != 1 || strings.Join(docker[0].RepoTags, " ") != "ghcr.io/camfleet/camfleet-agent:v1.2.3" || len(docker[0].Layers) != 2 {
				t.Fatalf("%s: manifest.json is %s", w.path, entries["manifest.json"])
			}
			for _, p := range append([]string{docker[0].Config}, docker[0].Layers...) {
				if _, ok := entries[p]; !ok {
					t.Errorf("%s: manifest.json names %s, not in the archive", w.path, p)
				}
			}
		}
	}
}

// TestRefusesWhatTheImageCannotRun: a binary for another architecture, a dynamically linked
// one (the image has no libc) and a version that is not a valid tag are errors, not images.
func TestRefusesWhatTheImageCannotRun(t *testing.T) {
	for _, tc := range []struct {
		name    string
		version string
		bin     program
		want    string
	}{
		{"wrong architecture", "v1.2.3", program{name: "x", arch: "arm64", data: fakeELF(t, elf.EM_X86_64, false)}, "built for EM_X86_64"},
		{"dynamic", "v1.2.3", program{name: "x", arch: "amd64", data: fakeELF(t, elf.EM_X86_64, true)}, "dynamically linked"},
		{"not ELF", "v1.2.3", program{name: "x", arch: "amd64", data: []byte("#!/bin/sh\n")}, "not an ELF"},
		{"unknown arch", "v1.2.3", program{name: "x", arch: "riscv64", data: fakeELF(t, elf.EM_RISCV, false)}, "only amd64 and arm64"},
		{"bad tag", "v1.2.3+build", program{name: "x", arch: "amd64", data: fakeELF(t, elf.EM_X86_64, false)}, "image reference"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := testBuilder()
			b.version = tc.version
			dir := t.TempDir()
			_, err := b.write(dir, []program{tc.bin})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("left %d files behind", len(left))
			}
		})
	}
}

// tarEntries reads every regular file of a tar stream, and fails the test if any entry is not
// stamped mtime: a time from the build machine would make archives differ between builds.
func tarEntries(t *testing.T, r io.Reader, mtime time.Time) map[string][]byte {
	t.Helper()
	entries := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return entries
		}
		must(t, err)
		if !hdr.ModTime.Equal(mtime) {
			t.Errorf("%s is stamped %v, want %v", hdr.Name, hdr.ModTime, mtime)
		}
		if hdr.Typeflag == tar.TypeReg {
			data, err := io.ReadAll(tr)
			must(t, err)
			entries[hdr.Name] = data
		}
	}
}

func archiveEntries(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	return tarEntries(t, f, testBuilder().created)
}

// readLayout unpacks the archive and opens it with go-containerregistry's layout reader, and
// returns the index its index.json names.
func readLayout(t *testing.T, path string) v1.ImageIndex {
	t.Helper()
	dir := t.TempDir()
	for name, data := range archiveEntries(t, path) {
		must(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755))
		must(t, os.WriteFile(filepath.Join(dir, name), data, 0o644))
	}
	p, err := layout.FromPath(dir)
	must(t, err)
	top, err := p.ImageIndex()
	must(t, err)
	m, err := top.IndexManifest()
	must(t, err)
	idx, err := top.ImageIndex(m.Manifests[0].Digest)
	must(t, err)
	return idx
}

// imageFiles is the regular files of img's layers by path.
func imageFiles(t *testing.T, img v1.Image) map[string][]byte {
	t.Helper()
	layers, err := img.Layers()
	must(t, err)
	files := map[string][]byte{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		must(t, err)
		maps.Copy(files, tarEntries(t, rc, testBuilder().created))
		rc.Close()
	}
	return files
}
