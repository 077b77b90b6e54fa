// Command imagebuild packs prebuilt camfleet binaries into container images without a
// container daemon or a base image (neither is reachable from the build machines): each image
// is an empty base plus two layers, one with what a static Go binary needs from a system (the
// CA bundle, a non-root user, /tmp) and one with the binary. Each binary becomes one archive
// per architecture and one multi-architecture archive, all OCI image layouts in tar form, which
// `ctr images import` (so k3s) reads; the per-architecture ones also carry Docker's
// manifest.json so `docker load` reads them too. Output is byte-for-byte reproducible: every
// timestamp is -source-date-epoch.
//
// hack/images.sh cross-compiles the binaries and runs this; docs/images.md says how to use the
// archives.
//
//	imagebuild -bin DIR -out DIR -version v0.1.0 camfleet-controller camfleet-agent ...
//
// DIR/linux_<arch>/<name> is each binary's build for <arch>.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "imagebuild: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("imagebuild", flag.ContinueOnError)
	binDir := fs.String("bin", "", "directory holding linux_<arch>/<name> for every architecture and name")
	outDir := fs.String("out", "", "directory the archives are written to")
	arches := fs.String("arch", "amd64,arm64", "comma-separated GOARCH values to build images for")
	repo := fs.String("repository", "ghcr.io/camfleet", "registry and path the image names start with; the name follows")
	version := fs.String("version", "", "image tag, and the org.opencontainers.image.version label")
	revision := fs.String("revision", "", "source commit, for the org.opencontainers.image.revision label")
	source := fs.String("source", "https://github.com/camfleet/camfleet", "the org.opencontainers.image.source label")
	caBundle := fs.String("ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "PEM CA bundle copied into every image (Debian's ca-certificates)")
	epoch := fs.String("source-date-epoch", os.Getenv("SOURCE_DATE_EPOCH"), "Unix time stamped on every file and config, for reproducible output (default $SOURCE_DATE_EPOCH, else 0)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *binDir == "" || *outDir == "" || *version == "" || fs.NArg() == 0 {
		return errors.New("want -bin, -out, -version and at least one binary name")
	}
	created := time.Unix(0, 0).UTC()
	if *epoch != "" {
		sec, err := strconv.ParseInt(*epoch, 10, 64)
		if err != nil {
			return fmt.Errorf("-source-date-epoch %q: %w", *epoch, err)
		}
		created = time.Unix(sec, 0).UTC()
	}
	ca, err := os.ReadFile(*caBundle)
	if err != nil {
		return fmt.Errorf("read the CA bundle (install Debian's ca-certificates: make deps): %w", err)
	}
	b := builder{
		repository: strings.TrimSuffix(*repo, "/"),
		version:    *version,
		revision:   *revision,
		source:     *source,
		created:    created,
		caBundle:   ca,
	}
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		return fmt.Errorf("create the output directory: %w", err)
	}
	for _, name := range fs.Args() {
		var bins []program
		for _, arch := range strings.Split(*arches, ",") {
			path := filepath.Join(*binDir, "linux_"+arch, name)
			data, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("read %s for %s: %w", name, arch, err)
			}
			bins = append(bins, program{name: name, arch: arch, data: data})
		}
		written, err := b.write(*outDir, bins)
		if err != nil {
			return fmt.Errorf("image %s: %w", name, err)
		}
		for _, w := range written {
			fmt.Printf("%s\t%s\t%s\n", w.path, w.ref, w.digest)
		}
	}
	return nil
}
