package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The non-root identity every image runs as: distroless's "nonroot", so volumes and
// securityContexts written for distroless images fit. The image names it by number because
// the kubelet can only verify runAsNonRoot against a numeric user.
const (
	nonrootID = 65532
	imageUser = "65532:65532"
)

// Where the binary and the CA bundle go: the bundle where Go's crypto/x509 looks first on
// Linux, so no SSL_CERT_FILE is needed (it is set anyway, for anything else that reads it).
const (
	exeDir      = "/usr/local/bin"
	caBundleDst = "etc/ssl/certs/ca-certificates.crt"
)

// elfMachine is the ELF machine each GOARCH's binaries must be built for.
var elfMachine = map[string]elf.Machine{
	"amd64": elf.EM_X86_64,
	"arm64": elf.EM_AARCH64,
}

// builder holds what every image shares: its name prefix, version, labels and base files.
type builder struct {
	repository string
	version    string
	revision   string
	source     string
	created    time.Time
	caBundle   []byte
}

// program is one build of one command for one architecture.
type program struct {
	name string
	arch string
	data []byte
}

// ref is the image's name with the version as its tag, validated as a registry reference
// so that `ctr images import` and a later push accept it.
func (b builder) ref(cmd string) (name.Tag, error) {
	tag, err := name.NewTag(b.repository+"/"+cmd+":"+b.version, name.StrictValidation)
	if err != nil {
		return name.Tag{}, fmt.Errorf("image reference for version %q: %w", b.version, err)
	}
	return tag, nil
}

// checkBinary refuses a binary the image could not run: the wrong architecture, or linked
// against a dynamic loader and libc the empty base does not have.
func checkBinary(bin program) error {
	want, ok := elfMachine[bin.arch]
	if !ok {
		return fmt.Errorf("architecture %q: only amd64 and arm64 are built", bin.arch)
	}
	f, err := elf.NewFile(bytes.NewReader(bin.data))
	if err != nil {
		return fmt.Errorf("%s for %s is not an ELF executable: %w", bin.name, bin.arch, err)
	}
	defer f.Close()
	if f.Machine != want {
		return fmt.Errorf("%s for %s is built for %s, want %s", bin.name, bin.arch, f.Machine, want)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s for %s is dynamically linked; the image has no libc (link it with -extldflags -static)", bin.name, bin.arch)
		}
	}
	return nil
}

// platform is the image's platform. arm64 carries variant v8 as Docker and containerd write it,
// so tools that compare platforms literally match too.
func platform(arch string) v1.Platform {
	p := v1.Platform{OS: "linux", Architecture: arch}
	if arch == "arm64" {
		p.Variant = "v8"
	}
	return p
}

// baseLayer holds what a static Go binary takes from a system: CA certificates for TLS to the
// API server and token services, a passwd and group naming the non-root user (so user lookups
// agree with the numeric user), its home, and a world-writable /tmp. (No nsswitch.conf: Go's
// resolver reads /etc/hosts before DNS without one.) It is the same in every image, so a node
// stores it once.
func (b builder) baseLayer() (v1.Layer, error) {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", nonrootID, nonrootID)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", nonrootID)
	return b.layer([]file{
		{path: "etc/", mode: 0o755},
		{path: "etc/group", mode: 0o644, data: []byte(group)},
		{path: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{path: "etc/ssl/", mode: 0o755},
		{path: "etc/ssl/certs/", mode: 0o755},
		{path: caBundleDst, mode: 0o644, data: b.caBundle},
		{path: "home/", mode: 0o755},
		{path: "home/nonroot/", mode: 0o700, uid: nonrootID},
		{path: "root/", mode: 0o700},
		{path: "tmp/", mode: 0o1777},
		{path: "usr/", mode: 0o755},
		{path: "usr/local/", mode: 0o755},
		{path: "usr/local/bin/", mode: 0o755},
	})
}

// image is bin on the base: its config names the architecture, runs the binary as the non-root
// user, and labels the source and version.
func (b builder) image(base v1.Layer, bin program) (v1.Image, error) {
	if err := checkBinary(bin); err != nil {
		return nil, err
	}
	exe := filepath.Join(exeDir, bin.name)
	binLayer, err := b.layer([]file{{path: strings.TrimPrefix(exe, "/"), mode: 0o755, data: bin.data}})
	if err != nil {
		return nil, err
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	created := v1.Time{Time: b.created}
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, MediaType: types.OCILayer, History: v1.History{Created: created, CreatedBy: "hack/imagebuild: CA certificates, nonroot user, /tmp"}},
		mutate.Addendum{Layer: binLayer, MediaType: types.OCILayer, History: v1.History{Created: created, CreatedBy: "hack/imagebuild: " + exe}},
	)
	if err != nil {
		return nil, fmt.Errorf("add layers: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg = cfg.DeepCopy()
	p := platform(bin.arch)
	cfg.OS, cfg.Architecture, cfg.Variant = p.OS, p.Architecture, p.Variant
	cfg.Created = created
	cfg.Author = ""
	cfg.Config.Entrypoint = []string{exe}
	cfg.Config.Cmd = nil
	cfg.Config.User = imageUser
	cfg.Config.WorkingDir = "/"
	cfg.Config.Env = []string{"PATH=" + exeDir + ":/usr/bin:/bin", "SSL_CERT_FILE=/" + caBundleDst}
	cfg.Config.Labels = map[string]string{
		"org.opencontainers.image.title":   bin.name,
		"org.opencontainers.image.version": b.version,
		"org.opencontainers.image.source":  b.source,
		"org.opencontainers.image.created": b.created.Format(time.RFC3339),
	}
	if b.revision != "" {
		cfg.Config.Labels["org.opencontainers.image.revision"] = b.revision
	}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("write config: %w", err)
	}
	return img, nil
}

// index is the multi-architecture image: each image under its platform, as a registry serves
// it and as containerd picks the node's architecture from it.
func index(imgs map[string]v1.Image, arches []string) v1.ImageIndex {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range arches {
		p := platform(arch)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: imgs[arch], Descriptor: v1.Descriptor{Platform: &p}})
	}
	return idx
}

// file is one entry of a layer; a path ending in "/" is a directory. Owner is root unless uid
// says otherwise (the group follows the user).
type file struct {
	path string
	mode int64
	uid  int
	data []byte
}

// layer packs files into a gzip-compressed tar layer, compressed once here so the archives
// reuse the bytes. Times are b.created and names and owners fixed, so the same files give the
// same digest on every machine (compress/gzip writes no time or name in its header).
func (b builder) layer(files []file) (v1.Layer, error) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	tw := tar.NewWriter(zw)
	for _, f := range files {
		hdr := &tar.Header{Name: f.path, Mode: f.mode, Uid: f.uid, Gid: f.uid, ModTime: b.created}
		if f.path[len(f.path)-1] == '/' {
			hdr.Typeflag = tar.TypeDir
		} else {
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", f.path, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", f.path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close layer tar: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress layer: %w", err)
	}
	data := gz.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("layer digest: %w", err)
	}
	return l, nil
}
