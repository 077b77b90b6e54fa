// Command ctrimport imports an image archive with containerd's own code, as `ctr images import`
// and k3s do, and unpacks it as a node would, with no containerd daemon: archive.ImportIndex
// into a scratch content store, the image name taken from index.json's annotations as the
// containerd client takes it, the manifest and config resolved for each platform asked for,
// and each layer applied to a directory with containerd's applier, its uncompressed digest
// checked against the config's diff ID. It prints what it found as JSON for test/images to
// judge, and judges nothing itself. It is a module of its own so containerd stays out of
// camfleet's go.mod.
//
//	ctrimport WORK_DIR ARCHIVE PLATFORM...
package main

import (
	"context"
	_ "crypto/sha256" // go-digest's sha256, which containerd's importer hashes blobs with
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/images/archive"
	"github.com/containerd/containerd/v2/pkg/archive/compression"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/containerd/log"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	ctrarchive "github.com/containerd/containerd/v2/pkg/archive"
)

// Result is one image of the archive on one platform.
type Result struct {
	Name     string            `json:"name"`
	Platform string            `json:"platform"`
	Config   ocispec.Platform  `json:"config"`
	User     string            `json:"user"`
	Layers   int               `json:"layers"`
	Missing  int               `json:"missing"`
	Rootfs   string            `json:"rootfs"`
	Error    string            `json:"error,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
}

func main() {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: ctrimport WORK_DIR ARCHIVE PLATFORM...")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2], os.Args[3:]); err != nil {
		fmt.Fprintln(os.Stderr, "ctrimport:", err)
		os.Exit(1)
	}
}

func run(work, path string, plats []string) error {
	ctx := context.Background()
	// The local store warns that this file system lacks fs-verity; nothing here needs it.
	_ = log.SetLevel("error")
	store, err := local.NewStore(filepath.Join(work, "content"))
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	top, err := archive.ImportIndex(ctx, store, f)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	var idx ocispec.Index
	if err := readJSON(ctx, store, top, &idx); err != nil {
		return err
	}
	var results []Result
	for i, m := range idx.Manifests {
		// The client names images this way (client/import.go's imageName); ctr import adds a
		// prefix only to a bare tag in org.opencontainers.image.ref.name.
		name := m.Annotations[images.AnnotationImageName]
		if name == "" {
			name = archive.AddRefPrefix("import")(m.Annotations[ocispec.AnnotationRefName])
		}
		for _, p := range plats {
			r := Result{Name: name, Platform: p, Rootfs: filepath.Join(work, fmt.Sprintf("rootfs-%d-%s", i, filepath.Base(p)))}
			if err := check(ctx, store, m, p, &r); err != nil {
				r.Error = err.Error()
			}
			results = append(results, r)
		}
	}
	return json.NewEncoder(os.Stdout).Encode(results)
}

// check resolves image for platform p as the CRI does before it unpacks, and unpacks it.
func check(ctx context.Context, store content.Store, image ocispec.Descriptor, p string, r *Result) error {
	want, err := platforms.Parse(p)
	if err != nil {
		return err
	}
	match := platforms.Only(want)
	avail, _, _, missing, err := images.Check(ctx, store, image, match)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	r.Missing = len(missing)
	if !avail {
		return errors.New("content missing")
	}
	mfst, err := images.Manifest(ctx, store, image, match)
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	var cfg ocispec.Image
	if err := readJSON(ctx, store, mfst.Config, &cfg); err != nil {
		return err
	}
	r.Config, r.User, r.Layers, r.Labels = cfg.Platform, cfg.Config.User, len(mfst.Layers), cfg.Config.Labels
	if len(cfg.RootFS.DiffIDs) != len(mfst.Layers) {
		return fmt.Errorf("%d diff IDs for %d layers", len(cfg.RootFS.DiffIDs), len(mfst.Layers))
	}
	if err := os.MkdirAll(r.Rootfs, 0o755); err != nil {
		return err
	}
	for i, l := range mfst.Layers {
		if err := apply(ctx, store, l, cfg.RootFS.DiffIDs[i], r.Rootfs); err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
	}
	return nil
}

// apply unpacks layer onto root as containerd's walking differ does, and fails if the
// uncompressed stream is not diffID (containerd's unpacker refuses such an image).
func apply(ctx context.Context, store content.Store, layer ocispec.Descriptor, diffID digest.Digest, root string) error {
	ra, err := store.ReaderAt(ctx, layer)
	if err != nil {
		return err
	}
	defer ra.Close()
	ds, err := compression.DecompressStream(content.NewReader(ra))
	if err != nil {
		return err
	}
	defer ds.Close()
	digester := digest.Canonical.Digester()
	if _, err := ctrarchive.Apply(ctx, root, io.TeeReader(ds, digester.Hash())); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	// Apply stops at the tar's end marker; the digest covers the whole stream.
	if _, err := io.Copy(digester.Hash(), ds); err != nil {
		return err
	}
	if got := digester.Digest(); got != diffID {
		return fmt.Errorf("uncompresses to %s, the config says %s", got, diffID)
	}
	return nil
}

func readJSON(ctx context.Context, store content.Provider, d ocispec.Descriptor, v any) error {
	data, err := content.ReadBlob(ctx, store, d)
	if err != nil {
		return fmt.Errorf("read %s: %w", d.Digest, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s: %w", d.Digest, err)
	}
	return nil
}
