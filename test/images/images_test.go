// Package images tests `make images` (hack/images.sh) end to end: it builds the controller,
// token service and agent images for linux/amd64 and linux/arm64 on this machine, which has no
// container daemon, and checks what a node would get: archives in the form `ctr images import`
// reads, configs that run the binary as a non-root user on the right architecture, the files
// a static binary needs, and binaries that answer --version (the arm64 ones under
// qemu-aarch64-static). It reads the archives with the OCI image-spec's own types, not with the
// library that wrote them, and imports and unpacks them with containerd's own code (./ctrimport).
package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// version is stamped into the binaries and tags by the build under test.
const version = "v0.0.0-imagetest"

var (
	images = []string{"camfleet-controller", "camfleet-token-service", "camfleet-agent"}
	arches = []string{"amd64", "arm64"}
	// machines are what each architecture's binaries must be built for.
	machines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
)

// build runs hack/images.sh once for the whole package and returns its output directory.
var build = sync.OnceValues(func() (string, error) {
	// Missing tools fail the tests, not skip them: a skipped test here would let images that
	// were never checked ship.
	for _, tool := range []string{"aarch64-linux-gnu-gcc", "qemu-aarch64-static"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("%s is not installed: run make deps (hack/apt-packages.txt)", tool)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		return "", err
	}
	out, err := tempDir("camfleet-images-")
	if err != nil {
		return "", err
	}
	cmd := exec.Command(filepath.Join(root, "hack", "images.sh"), out)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "VERSION="+version, "REGISTRY=ghcr.io/camfleet", "ARCHES=amd64 arm64")
	if log, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("hack/images.sh: %w\n%s", err, log)
	}
	return out, nil
})

// tempDirs are the directories the package's builds made, shared by its tests (t.TempDir
// belongs to one test) and removed when they have all run.
var tempDirs struct {
	sync.Mutex
	dirs []string
}

func tempDir(pattern string) (string, error) {
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return "", err
	}
	tempDirs.Lock()
	defer tempDirs.Unlock()
	tempDirs.dirs = append(tempDirs.dirs, dir)
	return dir, nil
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, dir := range tempDirs.dirs {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

func built(t *testing.T) string {
	t.Helper()
	out, err := build()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestArchivesAreWhatCtrImports: each archive is an OCI image layout as containerd's importer
// reads it (`ctr images import`, k3s): an oci-layout file of version 1.0.0, an index.json whose
// entry names the image in the annotation the importer takes the name from, and every blob
// that entry reaches, with the digest and size its descriptor says. The multi-architecture
// archive holds an index of both platforms; each per-architecture one holds its image and
// Docker's manifest.json for `docker load`.
func TestArchivesAreWhatCtrImports(t *testing.T) {
	out := built(t)
	for _, name := range images {
		t.Run(name, func(t *testing.T) {
			a := readArchive(t, filepath.Join(out, name+".tar"))
			root := a.root(t, name)
			if root.MediaType != ocispec.MediaTypeImageIndex {
				t.Fatalf("%s.tar names a %s, want an image index", name, root.MediaType)
			}
			var idx ocispec.Index
			a.decode(t, root, &idx)
			var platforms []string
			for _, m := range idx.Manifests {
				if m.MediaType != ocispec.MediaTypeImageManifest || m.Platform == nil {
					t.Fatalf("index entry %s: media type %s, platform %v", m.Digest, m.MediaType, m.Platform)
				}
				platforms = append(platforms, m.Platform.OS+"/"+m.Platform.Architecture)
				a.image(t, m)
			}
			if want := []string{"linux/amd64", "linux/arm64"}; !slices.Equal(platforms, want) {
				t.Errorf("the index holds %v, want %v", platforms, want)
			}

			for _, arch := range arches {
				a := readArchive(t, filepath.Join(out, name+"-"+arch+".tar"))
				root := a.root(t, name)
				if root.MediaType != ocispec.MediaTypeImageManifest || root.Platform == nil || root.Platform.Architecture != arch {
					t.Fatalf("%s-%s.tar names a %s for %v", name, arch, root.MediaType, root.Platform)
				}
				m := a.image(t, root)
				var docker []struct {
					Config   string
					RepoTags []string
					Layers   []string
				}
				if err := json.Unmarshal(a.files["manifest.json"], &docker); err != nil || len(docker) != 1 {
					t.Fatalf("%s-%s.tar: manifest.json %q: %v", name, arch, a.files["manifest.json"], err)
				}
				want := []string{blobPath(m.Config.Digest)}
				for _, l := range m.Layers {
					want = append(want, blobPath(l.Digest))
				}
				if got := append([]string{docker[0].Config}, docker[0].Layers...); !slices.Equal(got, want) || !slices.Equal(docker[0].RepoTags, []string{ref(name)}) {
					t.Errorf("%s-%s.tar: manifest.json is %+v, want config and layers %v tagged %s", name, arch, docker[0], want, ref(name))
				}
			}
		})
	}
}

// ctrimport builds ./ctrimport, containerd's importer and unpacker as a command, once.
var ctrimport = sync.OnceValues(func() (string, error) {
	dir, err := tempDir("camfleet-ctrimport-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "ctrimport")
	// Its own module, so containerd stays out of camfleet's go.mod.
	if out, err := exec.Command("go", "build", "-C", "ctrimport", "-o", bin, ".").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./ctrimport: %w\n%s", err, out)
	}
	return bin, nil
})

// imported is what ctrimport reports for one image and platform.
type imported struct {
	Name     string
	Platform string
	Config   ocispec.Platform
	User     string
	Layers   int
	Missing  int
	Rootfs   string
	Error    string
}

// TestContainerdImportsAndUnpacksEachArchive: containerd's importer (the code behind
// `ctr images import` and k3s's image import) takes every archive, names the image
// ghcr.io/camfleet/<name>:<version>, finds all content for each platform the archive is for,
// and its applier unpacks the layers into a root filesystem holding the entrypoint and the CA
// bundle, with every layer's digest matching the config's diff ID.
func TestContainerdImportsAndUnpacksEachArchive(t *testing.T) {
	out := built(t)
	tool, err := ctrimport()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range images {
		archives := map[string][]string{name + ".tar": {"linux/amd64", "linux/arm64"}}
		for _, arch := range arches {
			archives[name+"-"+arch+".tar"] = []string{"linux/" + arch}
		}
		for file, plats := range archives {
			t.Run(file, func(t *testing.T) {
				cmd := exec.Command(tool, append([]string{t.TempDir(), filepath.Join(out, file)}, plats...)...)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				stdout, err := cmd.Output()
				if err != nil {
					t.Fatalf("ctrimport: %v\n%s", err, stderr.String())
				}
				var got []imported
				if err := json.Unmarshal(stdout, &got); err != nil {
					t.Fatalf("ctrimport said %s: %v", stdout, err)
				}
				if len(got) != len(plats) {
					t.Fatalf("containerd found %d images, want one for each of %v: %s", len(got), plats, stdout)
				}
				for i, r := range got {
					if r.Error != "" || r.Missing != 0 {
						t.Errorf("%s: %s (%d blobs missing)", r.Platform, r.Error, r.Missing)
						continue
					}
					if r.Name != ref(name) {
						t.Errorf("imported as %q, want %q", r.Name, ref(name))
					}
					if want := plats[i]; r.Config.OS+"/"+r.Config.Architecture != want {
						t.Errorf("asked for %s, containerd resolved a %s/%s config", want, r.Config.OS, r.Config.Architecture)
					}
					for _, f := range []string{"usr/local/bin/" + name, "etc/ssl/certs/ca-certificates.crt", "etc/passwd"} {
						if fi, err := os.Stat(filepath.Join(r.Rootfs, f)); err != nil || !fi.Mode().IsRegular() {
							t.Errorf("%s: /%s is not a file in the unpacked image: %v", r.Platform, f, err)
						}
					}
				}
			})
		}
	}
}

// TestImagesRunTheBinaryAsNonroot: each image's config names its architecture, runs
// /usr/local/bin/<name> as the numeric non-root user 65532 (numeric, so the kubelet can verify
// runAsNonRoot), and its filesystem holds the binary, this machine's CA bundle and a passwd
// entry for the user; the config's diff IDs are its layers' uncompressed digests, which
// containerd checks when it unpacks.
func TestImagesRunTheBinaryAsNonroot(t *testing.T) {
	out := built(t)
	hostCA, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatalf("read this machine's CA bundle: %v", err)
	}
	for _, name := range images {
		for _, arch := range arches {
			t.Run(name+"/"+arch, func(t *testing.T) {
				a := readArchive(t, filepath.Join(out, name+"-"+arch+".tar"))
				m := a.image(t, a.root(t, name))
				var cfg ocispec.Image
				a.decode(t, m.Config, &cfg)
				if cfg.OS != "linux" || cfg.Architecture != arch {
					t.Errorf("config platform %s/%s, want linux/%s", cfg.OS, cfg.Architecture, arch)
				}
				exe := "/usr/local/bin/" + name
				if !slices.Equal(cfg.Config.Entrypoint, []string{exe}) || len(cfg.Config.Cmd) != 0 {
					t.Errorf("entrypoint %q cmd %q, want [%s]", cfg.Config.Entrypoint, cfg.Config.Cmd, exe)
				}
				uid, gid, ok := strings.Cut(cfg.Config.User, ":")
				if n, err := strconv.Atoi(uid); err != nil || n == 0 || !ok || gid == "0" {
					t.Errorf("user %q, want a numeric non-root uid:gid", cfg.Config.User)
				}
				if cfg.Config.Labels["org.opencontainers.image.version"] != version {
					t.Errorf("labels %v, want org.opencontainers.image.version %s", cfg.Config.Labels, version)
				}

				fs := a.filesystem(t, m, cfg)
				if f := fs[exe]; f == nil || f.Mode&0o111 == 0 {
					t.Errorf("%s is not an executable file in the image", exe)
				}
				if ca := fs["/etc/ssl/certs/ca-certificates.crt"]; ca == nil || !bytes.Equal(ca.data, hostCA) {
					t.Errorf("the image's CA bundle is not this machine's /etc/ssl/certs/ca-certificates.crt")
				}
				if passwd := fs["/etc/passwd"]; passwd == nil || !strings.Contains(string(passwd.data), ":x:"+uid+":"+gid+":") {
					t.Errorf("/etc/passwd has no entry for %s", cfg.Config.User)
				}
				if tmp := fs["/tmp"]; tmp == nil || tmp.Typeflag != tar.TypeDir || tmp.Mode&0o1777 != 0o1777 {
					t.Errorf("/tmp is not a world-writable sticky directory")
				}
			})
		}
	}
}

// TestBinariesAreStaticAndAnswerVersion: the binary inside each image is an ELF file for the
// image's architecture with no dynamic loader (the base has no libc), and answers --version
// with its name and the version it was built as: arm64 under qemu-aarch64-static, amd64 here.
func TestBinariesAreStaticAndAnswerVersion(t *testing.T) {
	out := built(t)
	for _, name := range images {
		for _, arch := range arches {
			t.Run(name+"/"+arch, func(t *testing.T) {
				a := readArchive(t, filepath.Join(out, name+"-"+arch+".tar"))
				m := a.image(t, a.root(t, name))
				var cfg ocispec.Image
				a.decode(t, m.Config, &cfg)
				exe := a.filesystem(t, m, cfg)["/usr/local/bin/"+name]
				if exe == nil {
					t.Fatalf("no /usr/local/bin/%s in the image", name)
				}
				f, err := elf.NewFile(bytes.NewReader(exe.data))
				if err != nil {
					t.Fatalf("not an ELF file: %v", err)
				}
				if f.Machine != machines[arch] {
					t.Errorf("built for %s, want %s", f.Machine, machines[arch])
				}
				for _, p := range f.Progs {
					if p.Type == elf.PT_INTERP {
						t.Errorf("dynamically linked: the image has no loader or libc to run it")
					}
				}
				bin := filepath.Join(t.TempDir(), name)
				if err := os.WriteFile(bin, exe.data, 0o755); err != nil {
					t.Fatal(err)
				}
				cmd := exec.Command(bin, "--version")
				if arch == "arm64" {
					cmd = exec.Command("qemu-aarch64-static", bin, "--version")
				}
				got, err := cmd.CombinedOutput()
				if want := name + " " + version + "\n"; err != nil || string(got) != want {
					t.Errorf("%s --version: %q (%v), want %q", arch, got, err, want)
				}
			})
		}
	}
}

func ref(name string) string { return "ghcr.io/camfleet/" + name + ":" + version }

func blobPath(d digest.Digest) string { return "blobs/" + d.Algorithm().String() + "/" + d.Encoded() }

// archive is the regular files of an image archive by cleaned path, as containerd's importer
// collects them before it reads index.json.
type archive struct {
	path  string
	files map[string][]byte
}

// archives holds each archive read, as several tests look into the same one.
var archives sync.Map

func readArchive(t *testing.T, path string) *archive {
	t.Helper()
	if a, ok := archives.Load(path); ok {
		return a.(*archive)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a := &archive{path: filepath.Base(path), files: map[string][]byte{}}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", a.path, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		if a.files[filepath.Clean(hdr.Name)], err = io.ReadAll(tr); err != nil {
			t.Fatalf("%s: %v", a.path, err)
		}
	}
	var layout ocispec.ImageLayout
	if err := json.Unmarshal(a.files[ocispec.ImageLayoutFile], &layout); err != nil || layout.Version != ocispec.ImageLayoutVersion {
		t.Fatalf("%s: oci-layout %q (%v), want version %s", a.path, a.files[ocispec.ImageLayoutFile], err, ocispec.ImageLayoutVersion)
	}
	archives.Store(path, a)
	return a
}

// root is index.json's one entry, which must name the image as containerd's importer reads it.
func (a *archive) root(t *testing.T, name string) ocispec.Descriptor {
	t.Helper()
	var top ocispec.Index
	if err := json.Unmarshal(a.files["index.json"], &top); err != nil {
		t.Fatalf("%s: index.json: %v", a.path, err)
	}
	if len(top.Manifests) != 1 {
		t.Fatalf("%s: index.json has %d entries, want 1", a.path, len(top.Manifests))
	}
	d := top.Manifests[0]
	if got := d.Annotations["io.containerd.image.name"]; got != ref(name) {
		t.Errorf("%s: index.json names the image %q, want %q", a.path, got, ref(name))
	}
	if got := d.Annotations[ocispec.AnnotationRefName]; got != version {
		t.Errorf("%s: index.json's %s is %q, want the tag %q", a.path, ocispec.AnnotationRefName, got, version)
	}
	return d
}

// blob is d's content, checked against d's digest and size.
func (a *archive) blob(t *testing.T, d ocispec.Descriptor) []byte {
	t.Helper()
	data, ok := a.files[blobPath(d.Digest)]
	if !ok {
		t.Fatalf("%s: blob %s (%s) is missing", a.path, d.Digest, d.MediaType)
	}
	if int64(len(data)) != d.Size || digest.FromBytes(data) != d.Digest {
		t.Fatalf("%s: blob %s has %d bytes and digest %s, want %d bytes", a.path, d.Digest, len(data), digest.FromBytes(data), d.Size)
	}
	return data
}

func (a *archive) decode(t *testing.T, d ocispec.Descriptor, v any) {
	t.Helper()
	if err := json.Unmarshal(a.blob(t, d), v); err != nil {
		t.Fatalf("%s: %s: %v", a.path, d.Digest, err)
	}
}

// image is the manifest d points at, with its config and layers present and of OCI types.
func (a *archive) image(t *testing.T, d ocispec.Descriptor) ocispec.Manifest {
	t.Helper()
	var m ocispec.Manifest
	a.decode(t, d, &m)
	if m.MediaType != ocispec.MediaTypeImageManifest || m.Config.MediaType != ocispec.MediaTypeImageConfig {
		t.Errorf("%s: manifest %s has media type %s and config %s", a.path, d.Digest, m.MediaType, m.Config.MediaType)
	}
	a.blob(t, m.Config)
	for _, l := range m.Layers {
		if l.MediaType != ocispec.MediaTypeImageLayerGzip {
			t.Errorf("%s: layer %s has media type %s", a.path, l.Digest, l.MediaType)
		}
		a.blob(t, l)
	}
	return m
}

// entry is one file of an image's filesystem.
type entry struct {
	*tar.Header
	data []byte
}

// filesystem applies m's layers in order and returns the resulting files by absolute path,
// after checking each layer's uncompressed digest against the config's diff ID.
func (a *archive) filesystem(t *testing.T, m ocispec.Manifest, cfg ocispec.Image) map[string]*entry {
	t.Helper()
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		t.Fatalf("%s: %d diff IDs for %d layers", a.path, len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	fs := map[string]*entry{}
	for i, l := range m.Layers {
		zr, err := gzip.NewReader(bytes.NewReader(a.blob(t, l)))
		if err != nil {
			t.Fatalf("%s: layer %s: %v", a.path, l.Digest, err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s: layer %s: %v", a.path, l.Digest, err)
		}
		if digest.FromBytes(raw) != cfg.RootFS.DiffIDs[i] {
			t.Errorf("%s: layer %s uncompresses to %s, the config says %s", a.path, l.Digest, digest.FromBytes(raw), cfg.RootFS.DiffIDs[i])
		}
		tr := tar.NewReader(bytes.NewReader(raw))
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: layer %s: %v", a.path, l.Digest, err)
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatalf("%s: layer %s: %v", a.path, l.Digest, err)
			}
			fs[filepath.Join("/", hdr.Name)] = &entry{Header: hdr, data: data}
		}
	}
	return fs
}
