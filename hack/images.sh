#!/usr/bin/env bash
# Builds the controller, token service and agent images for linux/amd64 and linux/arm64 with
# no container daemon and no base image (neither is reachable here): cross-compiles static
# binaries, then hack/imagebuild packs each onto an empty base (CA bundle, non-root user) as OCI
# archives that `k3s ctr images import` reads. docs/images.md says what comes out and how to use it.
#
#   hack/images.sh [OUT_DIR]          (default: bin/images in the clone)
#
# OUT_DIR/<image>.tar holds every architecture, OUT_DIR/<image>-<arch>.tar one, and
# OUT_DIR/linux_<arch>/ the binaries. Environment:
#   VERSION            the image tag and what --version prints (default: git describe, else
#                      v0.0.0-<commit>; -dirty when tracked files differ from the commit)
#   ARCHES             architectures to build (default: "amd64 arm64")
#   REGISTRY           where the image names point (default: ghcr.io/camfleet)
#   SOURCE_DATE_EPOCH  the time stamped into the images (default: the commit's), so a rebuild
#                      of a commit gives the same digests
set -euo pipefail

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'hack/images.sh: %s\n' "$*" >&2; exit 1; }

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/bin/images}
mkdir -p "$out" && out=$(cd "$out" && pwd)
read -ra arches <<<"${ARCHES:-amd64 arm64}"
REGISTRY=${REGISTRY:-ghcr.io/camfleet}
command -v go >/dev/null || die "go is not on PATH; install Go 1.26 first"
cd "$root"

# --no-optional-locks: reading the tree's state must not rewrite .git/index.
git_() { git --no-optional-locks "$@" 2>/dev/null; }
if [[ -z ${VERSION:-} ]]; then
  VERSION=$(git_ describe --tags --match 'v[0-9]*') || VERSION=v0.0.0-$(git_ rev-parse --short=12 HEAD) || VERSION=v0.0.0-dev
  [[ -z $(git_ status --porcelain --untracked-files=no) ]] || VERSION+=-dirty
fi
# Checked now rather than after minutes of compiling: the version is the image tag too.
[[ $VERSION =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] ||
  die "VERSION '$VERSION' is not an image tag (letters, digits, '_', '.', '-'; no '+')"
revision=$(git_ rev-parse HEAD) || revision=
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git_ log -1 --format=%ct || echo 0)}

# cc_for ARCH: the C compiler that targets ARCH from this machine, for the cgo agent.
cc_for() {
  local host
  host=$(go env GOHOSTARCH)
  if [[ $1 == "$host" ]]; then echo "${CC:-gcc}"; return; fi
  case $1 in
    arm64) echo aarch64-linux-gnu-gcc ;;
    amd64) echo x86_64-linux-gnu-gcc ;;
    *) die "no cross C compiler known for $1" ;;
  esac
}

ldflags="-s -w -X github.com/camfleet/camfleet/internal/cli.Version=$VERSION"
for arch in "${arches[@]}"; do
  dir=$out/linux_$arch
  mkdir -p "$dir"
  say "building camfleet-controller and camfleet-token-service $VERSION for linux/$arch"
  # Pure Go, so static without a C compiler.
  CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath -ldflags "$ldflags" -o "$dir/" \
    ./cmd/camfleet-controller ./cmd/camfleet-token-service
  cc=$(cc_for "$arch")
  command -v "$cc" >/dev/null || die "$cc is missing: run make deps (hack/apt-packages.txt lists it)"
  say "building camfleet-agent $VERSION for linux/$arch with cgo ($cc), statically linked"
  # Static, as the image has no libc. netgo and osusergo keep glibc's name and user lookups
  # out: statically linked glibc would try to load NSS modules the image does not have. They
  # also make every package but go4vl's compile as in the CGO_ENABLED=0 build above, so the
  # Go build cache holds each architecture's dependencies once.
  CGO_ENABLED=1 CC=$cc GOOS=linux GOARCH=$arch go build -trimpath -tags netgo,osusergo \
    -ldflags "$ldflags -linkmode external -extldflags -static" -o "$dir/camfleet-agent" ./cmd/camfleet-agent
done

say "packing the images into $out"
# imagebuild refuses a binary for the wrong architecture or a dynamically linked one.
go run ./hack/imagebuild -bin "$out" -out "$out" -arch "$(IFS=,; echo "${arches[*]}")" \
  -repository "$REGISTRY" -version "$VERSION" -revision "$revision" \
  camfleet-controller camfleet-token-service camfleet-agent
say "images tagged $VERSION in $out; on a k3s node: sudo k3s ctr -n k8s.io images import <image>-<arch>.tar, then set the chart's image tags (docs/images.md)"
