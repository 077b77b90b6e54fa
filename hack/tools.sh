#!/usr/bin/env bash
# Builds the pinned test and generation tools from the Go module proxy into a cache outside the
# clone, keyed by version, and prints where they are. A second run finds them and returns at once.
#
#   hack/tools.sh [all|envtest|control-plane|kwok|controller-gen|helm|kubectl|golangci-lint]
#                                                   (default: all; control-plane: kube-scheduler
#                                                   and kube-controller-manager)
#   hack/tools.sh --print-assets                    envtest's KUBEBUILDER_ASSETS dir
#   hack/tools.sh --print-<tool>                    where a tool is (kube-scheduler, kwok, helm...)
#
# Everything builds from source because this machine reaches no download site other than the
# Go module proxy (see ../shared/DESIGN.md, "Test infrastructure facts").
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-1.37.2}
ETCD_VERSION=${ETCD_VERSION:-3.6.16}
CONTROLLER_TOOLS_VERSION=${CONTROLLER_TOOLS_VERSION:-0.23.0}
HELM_VERSION=${HELM_VERSION:-3.22.0}
GOLANGCI_LINT_VERSION=${GOLANGCI_LINT_VERSION:-2.15.0}
KWOK_VERSION=${KWOK_VERSION:-0.8.0}
CACHE=${CAMFLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/camfleet}

K8S_DIR=$CACHE/kubernetes-v$K8S_VERSION
ETCD_DIR=$CACHE/etcd-v$ETCD_VERSION
ASSETS=$CACHE/envtest-k8s-v$K8S_VERSION-etcd-v$ETCD_VERSION
CG_DIR=$CACHE/controller-gen-v$CONTROLLER_TOOLS_VERSION
HELM_DIR=$CACHE/helm-v$HELM_VERSION
GL_DIR=$CACHE/golangci-lint-v$GOLANGCI_LINT_VERSION
KWOK_DIR=$CACHE/kwok-v$KWOK_VERSION

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'hack/tools.sh: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null || die "go is not on PATH; install Go 1.26 first"

# throwaway_module DIR: a scratch module outside the clone, so nothing here touches our go.mod.
throwaway_module() {
  rm -rf "$1" && mkdir -p "$1" && (cd "$1" && go mod init camfleet.invalid/tools >/dev/null 2>&1)
}

# kubernetes_module: the throwaway module that builds commands of k8s.io/kubernetes, kept in
# $CACHE/tmp so a later step (the scheduler and controller manager) reuses its downloads.
kubernetes_module() {
  local work=$CACHE/tmp/kubernetes
  if grep -qs "k8s.io/kubernetes v$K8S_VERSION" "$work/go.mod"; then cd "$work"; return; fi
  throwaway_module "$work"
  cd "$work"
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [[ -f $gomod ]] || die "could not download k8s.io/kubernetes@v$K8S_VERSION from the module proxy"
  # kubernetes replaces its staging modules with ./staging/...; point each at the published copy.
  local staging
  staging=$(sed -n 's#^\s*\(k8s.io/[^ ]*\) => ./staging/.*#\1#p' "$gomod")
  [[ -n $staging ]] || die "found no staging replacements in $gomod"
  local args=(-require "k8s.io/kubernetes@v$K8S_VERSION")
  for m in $staging; do args+=(-replace "$m=$m@v0.${K8S_VERSION#1.}"); done
  go mod edit "${args[@]}"
}

# k8s_build DIR COMMAND...: compiles k8s.io/kubernetes/cmd/COMMAND with the version stamped, as
# kubectl's and helm's version checks need.
k8s_build() {
  local dir=$1; shift
  local minor=${K8S_VERSION#1.}; minor=${minor%%.*}
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  local pkgs=() c
  for c in "$@"; do pkgs+=("k8s.io/kubernetes/cmd/$c@v$K8S_VERSION"); done
  go get "${pkgs[@]}" >&2
  for c in "$@"; do
    say "compiling $c"
    go build -trimpath -ldflags "$ldflags" -o "$dir/$c" "k8s.io/kubernetes/cmd/$c"
  done
}

build_kubernetes() {
  if [[ -x $K8S_DIR/kube-apiserver && -x $K8S_DIR/kubectl ]]; then return; fi
  say "building kube-apiserver and kubectl v$K8S_VERSION from the module proxy (about 5 minutes cold)"
  kubernetes_module
  rm -rf "$K8S_DIR.partial" && mkdir -p "$K8S_DIR.partial"
  k8s_build "$K8S_DIR.partial" kube-apiserver kubectl
  rm -rf "$K8S_DIR" && mv "$K8S_DIR.partial" "$K8S_DIR"
  cd - >/dev/null
}

# build_kube_control_plane adds the scheduler and the controller manager beside the API server
# (test/fleet runs them with KWOK). A separate step, so a cache holding only the API server and
# kubectl stays valid and gains the two binaries without rebuilding the others.
build_kube_control_plane() {
  build_kubernetes
  if [[ -x $K8S_DIR/kube-scheduler && -x $K8S_DIR/kube-controller-manager ]]; then return; fi
  say "building kube-scheduler and kube-controller-manager v$K8S_VERSION (several minutes cold)"
  kubernetes_module
  local c
  for c in kube-scheduler kube-controller-manager; do
    if [[ -x $K8S_DIR/$c ]]; then continue; fi
    rm -rf "$K8S_DIR.partial" && mkdir -p "$K8S_DIR.partial"
    k8s_build "$K8S_DIR.partial" "$c"
    mv "$K8S_DIR.partial/$c" "$K8S_DIR/$c" && rm -rf "$K8S_DIR.partial"
  done
  cd - >/dev/null
}

build_etcd() {
  if [[ -x $ETCD_DIR/etcd ]]; then return; fi
  say "building etcd v$ETCD_VERSION from the module proxy (about a minute cold)"
  local work=$CACHE/tmp/etcd
  throwaway_module "$work"
  cd "$work"
  go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >&2
  mkdir -p "$ETCD_DIR.partial"
  go build -trimpath -ldflags "-s -w" -o "$ETCD_DIR.partial/etcd" go.etcd.io/etcd/server/v3
  rm -rf "$ETCD_DIR" && mv "$ETCD_DIR.partial" "$ETCD_DIR"
  cd - >/dev/null
}

envtest_assets() {
  build_kubernetes
  build_etcd
  mkdir -p "$ASSETS"
  ln -sf "$K8S_DIR/kube-apiserver" "$ASSETS/kube-apiserver"
  ln -sf "$K8S_DIR/kubectl" "$ASSETS/kubectl"
  ln -sf "$ETCD_DIR/etcd" "$ASSETS/etcd"
  "$ASSETS/kube-apiserver" --version >/dev/null || die "kube-apiserver in $ASSETS does not run"
  "$ASSETS/etcd" --version >/dev/null || die "etcd in $ASSETS does not run"
}

go_install() { # DIR PACKAGE@VERSION
  local dir=$1 pkg=$2 name=${2%@*}; name=${name##*/}
  if [[ -x $dir/$name ]]; then return; fi
  say "installing $pkg"
  GOBIN=$dir.partial go install "$pkg" >&2
  rm -rf "$dir" && mv "$dir.partial" "$dir"
}

controller_gen() { go_install "$CG_DIR" "sigs.k8s.io/controller-tools/cmd/controller-gen@v$CONTROLLER_TOOLS_VERSION"; }
helm() { go_install "$HELM_DIR" "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"; }
golangci_lint() { go_install "$GL_DIR" "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v$GOLANGCI_LINT_VERSION"; }
# kwok installs the KWOK controller and beside it stages.yaml, the stages its module ships for
# nodes that turn Ready and pods that turn Running and Ready (kustomize/stage/*/fast), which
# the kwok binary needs as --config (kwokctl embeds them; the bare controller does not).
kwok() {
  if [[ -x $KWOK_DIR/kwok && -s $KWOK_DIR/stages.yaml ]]; then return; fi
  say "installing sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION"
  rm -rf "$KWOK_DIR.partial"
  GOBIN=$KWOK_DIR.partial go install "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION" >&2
  local src f
  src=$(go mod download -json "sigs.k8s.io/kwok@v$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [[ -d $src/kustomize/stage ]] || die "no kustomize/stage in sigs.k8s.io/kwok@v$KWOK_VERSION"
  for f in "$src"/kustomize/stage/node/fast/node-initialize.yaml "$src"/kustomize/stage/pod/fast/pod-{ready,complete,delete}.yaml; do
    printf -- '---\n' && cat "$f"
  done >"$KWOK_DIR.partial/stages.yaml"
  rm -rf "$KWOK_DIR" && mv "$KWOK_DIR.partial" "$KWOK_DIR"
}

case ${1:-all} in
  --print-assets) echo "$ASSETS" ;;
  --print-controller-gen) echo "$CG_DIR/controller-gen" ;;
  --print-helm) echo "$HELM_DIR/helm" ;;
  --print-kubectl) echo "$K8S_DIR/kubectl" ;;
  --print-golangci-lint) echo "$GL_DIR/golangci-lint" ;;
  --print-kube-scheduler) echo "$K8S_DIR/kube-scheduler" ;;
  --print-kube-controller-manager) echo "$K8S_DIR/kube-controller-manager" ;;
  --print-kwok) echo "$KWOK_DIR/kwok" ;;
  --print-kwok-stages) echo "$KWOK_DIR/stages.yaml" ;;
  envtest) envtest_assets; echo "$ASSETS" ;;
  kubectl) build_kubernetes; echo "$K8S_DIR/kubectl" ;;
  controller-gen) controller_gen; echo "$CG_DIR/controller-gen" ;;
  helm) helm; echo "$HELM_DIR/helm" ;;
  golangci-lint) golangci_lint; echo "$GL_DIR/golangci-lint" ;;
  control-plane) build_kube_control_plane; echo "$K8S_DIR" ;;
  kwok) kwok; echo "$KWOK_DIR/kwok" ;;
  all) controller_gen; helm; golangci_lint; envtest_assets; build_kube_control_plane; kwok; say "tools ready in $CACHE"; echo "$ASSETS" ;;
  *) die "unknown target '$1' (want all, envtest, kubectl, control-plane, kwok, controller-gen, helm, golangci-lint or --print-<tool>)" ;;
esac
