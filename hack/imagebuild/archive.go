package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotations on index.json's entry that name the image on import. containerd's importer
// (`ctr images import`, k3s) takes the full name from the first; the OCI image-layout spec
// names a tag by the second, which skopeo and `docker load` read.
const (
	annotationContainerdName = "io.containerd.image.name"
	annotationRefName        = "org.opencontainers.image.ref.name"
)

// written is one archive: where, the image name it imports as, and its root digest (the index
// or manifest a registry would serve under that name).
type written struct {
	path   string
	ref    string
	digest v1.Hash
}

// write builds the images of one command, one per architecture in bins, and writes
// <name>.tar (all architectures under one index) and <name>-<arch>.tar (one each) into dir.
func (b builder) write(dir string, bins []program) ([]written, error) {
	if len(bins) == 0 {
		return nil, errors.New("no binaries")
	}
	cmd := bins[0].name
	tag, err := b.ref(cmd)
	if err != nil {
		return nil, err
	}
	base, err := b.baseLayer()
	if err != nil {
		return nil, fmt.Errorf("base layer: %w", err)
	}
	imgs := make(map[string]v1.Image, len(bins))
	var arches []string
	for _, bin := range bins {
		if imgs[bin.arch] != nil {
			return nil, fmt.Errorf("two binaries for %s", bin.arch)
		}
		if imgs[bin.arch], err = b.image(base, bin); err != nil {
			return nil, err
		}
		arches = append(arches, bin.arch)
	}

	var out []written
	idx := index(imgs, arches)
	w, err := b.writeArchive(filepath.Join(dir, cmd+".tar"), tag, idx, nil)
	if err != nil {
		return nil, err
	}
	out = append(out, w)
	for _, arch := range arches {
		w, err := b.writeArchive(filepath.Join(dir, cmd+"-"+arch+".tar"), tag, imgs[arch], imgs[arch])
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}

// writeArchive writes root (an image or an index) as an OCI image layout in a tar archive at
// path, named tag in index.json. With docker set (root itself, when it is an image), it also
// writes Docker's manifest.json, which `docker save` writes beside the OCI layout and older
// loaders need. The archive appears whole or not at all.
func (b builder) writeArchive(path string, tag name.Tag, root partial.Describable, docker v1.Image) (written, error) {
	desc, err := partial.Descriptor(root)
	if err != nil {
		return written{}, fmt.Errorf("describe %s: %w", tag, err)
	}
	if img, ok := root.(v1.Image); ok {
		cfg, err := img.ConfigFile()
		if err != nil {
			return written{}, fmt.Errorf("read config of %s: %w", tag, err)
		}
		desc.Platform = cfg.Platform()
	}
	desc.Annotations = map[string]string{annotationContainerdName: tag.String(), annotationRefName: tag.TagStr()}

	f, err := os.CreateTemp(filepath.Dir(path), ".partial-*.tar")
	if err != nil {
		return written{}, fmt.Errorf("create archive: %w", err)
	}
	defer os.Remove(f.Name()) // a no-op once renamed into place
	defer f.Close()
	a := &archive{tw: tar.NewWriter(f), mtime: b.created, seen: map[v1.Hash]bool{}}
	if err := a.write(desc, root, docker); err != nil {
		return written{}, fmt.Errorf("write %s: %w", path, err)
	}
	if err := a.tw.Close(); err != nil {
		return written{}, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return written{}, fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return written{}, fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return written{}, fmt.Errorf("write %s: %w", path, err)
	}
	return written{path: path, ref: tag.String(), digest: desc.Digest}, nil
}

// archive writes an OCI image layout into a tar stream, each blob once.
type archive struct {
	tw    *tar.Writer
	mtime time.Time
	seen  map[v1.Hash]bool
}

func (a *archive) write(desc *v1.Descriptor, root partial.Describable, docker v1.Image) error {
	layout, err := json.Marshal(map[string]string{"imageLayoutVersion": "1.0.0"})
	if err != nil {
		return err
	}
	if err := a.file("oci-layout", layout); err != nil {
		return err
	}
	top, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{*desc}})
	if err != nil {
		return fmt.Errorf("encode index.json: %w", err)
	}
	if err := a.file("index.json", top); err != nil {
		return err
	}
	if docker != nil {
		m, err := dockerManifest(docker, desc.Annotations[annotationContainerdName])
		if err != nil {
			return err
		}
		if err := a.file("manifest.json", m); err != nil {
			return err
		}
	}
	if err := a.dir("blobs/"); err != nil {
		return err
	}
	if err := a.dir("blobs/sha256/"); err != nil {
		return err
	}
	switch r := root.(type) {
	case v1.ImageIndex:
		return a.index(r)
	case v1.Image:
		return a.image(r)
	default:
		return fmt.Errorf("cannot archive a %T", root)
	}
}

// dockerManifest is `docker save`'s manifest.json for img: its config and layers by path in
// the archive, and the name to tag it with.
func dockerManifest(img v1.Image, ref string) ([]byte, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	entry := struct {
		Config   string
		RepoTags []string
		Layers   []string
	}{Config: blobPath(m.Config.Digest), RepoTags: []string{ref}}
	for _, l := range m.Layers {
		entry.Layers = append(entry.Layers, blobPath(l.Digest))
	}
	data, err := json.Marshal([]any{entry})
	if err != nil {
		return nil, fmt.Errorf("encode manifest.json: %w", err)
	}
	return data, nil
}

func blobPath(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

func (a *archive) index(idx v1.ImageIndex) error {
	raw, err := idx.RawManifest()
	if err != nil {
		return fmt.Errorf("index manifest: %w", err)
	}
	if err := a.raw(raw); err != nil {
		return err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return fmt.Errorf("index manifest: %w", err)
	}
	for _, d := range m.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return fmt.Errorf("image %s of the index: %w", d.Digest, err)
		}
		if err := a.image(img); err != nil {
			return err
		}
	}
	return nil
}

func (a *archive) image(img v1.Image) error {
	raw, err := img.RawManifest()
	if err != nil {
		return fmt.Errorf("image manifest: %w", err)
	}
	if err := a.raw(raw); err != nil {
		return err
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return fmt.Errorf("image config: %w", err)
	}
	if err := a.raw(cfg); err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("image layers: %w", err)
	}
	for _, l := range layers {
		h, err := l.Digest()
		if err != nil {
			return fmt.Errorf("layer digest: %w", err)
		}
		size, err := l.Size()
		if err != nil {
			return fmt.Errorf("layer %s size: %w", h, err)
		}
		if err := a.blob(h, size, l.Compressed); err != nil {
			return err
		}
	}
	return nil
}

// raw writes a manifest or config blob, addressed by its sha256.
func (a *archive) raw(data []byte) error {
	h, size, err := v1.SHA256(bytes.NewReader(data))
	if err != nil {
		return err
	}
	return a.blob(h, size, func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}

// blob writes the blob h under blobs/, unless it is already there: the base layer is shared.
func (a *archive) blob(h v1.Hash, size int64, open func() (io.ReadCloser, error)) error {
	if a.seen[h] {
		return nil
	}
	a.seen[h] = true
	rc, err := open()
	if err != nil {
		return fmt.Errorf("open blob %s: %w", h, err)
	}
	defer rc.Close()
	if err := a.tw.WriteHeader(a.header(blobPath(h), tar.TypeReg, 0o644, size)); err != nil {
		return fmt.Errorf("blob %s: %w", h, err)
	}
	// tar.Writer fails a short or long copy, so the entry is exactly the size the manifests
	// promise.
	if _, err := io.Copy(a.tw, rc); err != nil {
		return fmt.Errorf("blob %s: %w", h, err)
	}
	return nil
}

func (a *archive) file(name string, data []byte) error {
	if err := a.tw.WriteHeader(a.header(name, tar.TypeReg, 0o644, int64(len(data)))); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if _, err := a.tw.Write(data); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func (a *archive) dir(name string) error {
	if err := a.tw.WriteHeader(a.header(name, tar.TypeDir, 0o755, 0)); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func (a *archive) header(name string, typ byte, mode, size int64) *tar.Header {
	return &tar.Header{Name: name, Typeflag: typ, Mode: mode, Size: size, ModTime: a.mtime}
}
