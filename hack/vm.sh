#!/usr/bin/env bash
# Prepares what test/vivid boots in qemu: Debian's kernel, the vivid virtual camera driver with
# the modules it needs, and a static busybox, in a cache outside the clone keyed by the kernel
# package's version, and prints where they are. A second run finds them and returns at once.
#
#   hack/vm.sh               prepare (about 20 s and a 70 MB download cold), print the directory
#   hack/vm.sh --print-dir   print the directory only
#
# The directory holds vmlinuz, busybox, kernel-release (what uname -r says in the VM) and
# modules/, a tree to copy into the initramfs as it is: lib/modules/<release>/ with vivid.ko, the
# modules it needs and a modules.dep of just those, so busybox modprobe loads them in order.
#
# The kernel comes from the package linux-image-amd64 points at, downloaded and unpacked rather
# than installed: the host keeps its own kernel. qemu itself is in hack/apt-packages.txt.
set -euo pipefail

CACHE=${CAMFLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/camfleet}

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'hack/vm.sh: %s\n' "$*" >&2; exit 1; }

for tool in apt-cache apt-get dpkg-deb tar; do
  command -v "$tool" >/dev/null || die "$tool is not on PATH; this script needs a Debian machine"
done

# CAMFLEET_VM_LISTS_FRESH marks a run this script restarted after refreshing the lists.
updated=${CAMFLEET_VM_LISTS_FRESH:-}
apt_update() {
  [[ -z $updated ]] || return 1
  updated=1
  local sudo=; [[ $(id -u) == 0 ]] || sudo=sudo
  say "refreshing the apt package lists"
  $sudo apt-get update -qq >&2 || die "apt-get update failed"
}

# kernel_package prints the concrete kernel package linux-image-amd64 depends on and its
# version, such as "linux-image-6.1.0-57-amd64 6.1.192-3". Debian pins the version in the
# dependency, which spares a second apt-cache run (a second or so where apt keeps no cache).
kernel_package() {
  local dep pkg ver
  dep=$(apt-cache show --no-all-versions linux-image-amd64 2>/dev/null | sed -n 's/^Depends: \(linux-image-[^ ,]*\)\(.*\)/\1\2/p' | head -n1)
  pkg=${dep%% *}
  [[ $pkg == linux-image-* ]] || return 1
  ver=$(sed -n 's/^[^ ]* (= \([^)]*\)).*/\1/p' <<<"$dep")
  [[ -n $ver ]] || ver=$(apt-cache policy "$pkg" | sed -n 's/^ *Candidate: //p')
  [[ -n $ver && $ver != "(none)" ]] || return 1
  echo "$pkg $ver"
}

# A machine whose package lists were never fetched knows no kernel package yet.
if ! kpkg=$(kernel_package); then
  apt_update || die "apt knows no linux-image-amd64 package; check /etc/apt/sources.list"
  kpkg=$(kernel_package) || die "apt knows no linux-image-amd64 package; check /etc/apt/sources.list"
fi
read -r KPKG KVER <<<"$kpkg"
RELEASE=${KPKG#linux-image-}
DIR=$CACHE/vm-$RELEASE-$KVER

if [[ ${1:-} == --print-dir ]]; then echo "$DIR"; exit 0; fi
[[ $# == 0 ]] || die "unknown argument '$1' (want none or --print-dir)"

if [[ -f $DIR/vmlinuz && -x $DIR/busybox && -f $DIR/kernel-release ]]; then echo "$DIR"; exit 0; fi

mkdir -p "$CACHE"
partial=$(mktemp -d "$DIR.partial.XXXXXX")
trap 'rm -rf "$partial"' EXIT
work=$partial/work
mkdir -p "$work/debs" "$work/root"

# download PACKAGE=VERSION...
download() {
  (cd "$work/debs" && apt-get download -qq "$@" >&2 2>/dev/null) && return
  # Lists older than the mirror name a kernel it no longer has (it keeps the newest only):
  # refresh them and start again, since the kernel package itself may have a new name now.
  apt_update || { (cd "$work/debs" && apt-get download -qq "$@" >&2) && return; die "could not download $*"; }
  rm -rf "$partial"
  CAMFLEET_VM_LISTS_FRESH=1 exec "$0"
}

say "downloading $KPKG $KVER and busybox-static"
download "$KPKG=$KVER" busybox-static
kdeb=$(echo "$work"/debs/"$KPKG"_*.deb)
bdeb=$(echo "$work"/debs/busybox-static_*.deb)
[[ -f $kdeb && -f $bdeb ]] || die "apt-get download left no $KPKG or busybox-static package in $work/debs"

say "unpacking the kernel and its modules"
dpkg-deb --fsys-tarfile "$kdeb" | tar -x -C "$work/root" --wildcards --wildcards-match-slash \
  './boot/vmlinuz-*' '*/modules/*'
dpkg-deb --fsys-tarfile "$bdeb" | tar -x -C "$work/root" ./bin/busybox
busybox=$work/root/bin/busybox
"$busybox" true || die "busybox from busybox-static does not run"

mods=$(find "$work/root" -type d -path "*/modules/$RELEASE" | head -n1)
[[ -d $mods ]] || die "$kdeb has no modules for $RELEASE"
# Newer Debian kernels compress their modules; the VM's busybox insmod may lack the decompressor.
if [[ -n $(find "$mods" -name '*.ko.xz' -print -quit) ]]; then
  say "decompressing the modules (xz)"
  find "$mods" -name '*.ko.xz' -print0 | xargs -0 -r -n 64 -P "$(nproc)" xz -d
fi
if [[ -n $(find "$mods" -name '*.ko.zst' -print -quit) ]]; then
  command -v zstd >/dev/null || die "the modules are zstd-compressed and zstd is not installed"
  say "decompressing the modules (zstd)"
  find "$mods" -name '*.ko.zst' -print0 | xargs -0 -r -n 64 -P "$(nproc)" zstd -d -q --rm
fi

# The package leaves modules.dep to depmod at install time; busybox's depmod writes it here.
say "finding the modules vivid needs"
"$busybox" depmod -b "$work/root" "$RELEASE"
deps=$(sed -n 's#^\([^:]*/vivid\.ko\):\(.*\)$#\1\2#p' "$mods/modules.dep")
[[ -n $deps ]] || die "$KPKG has no vivid.ko (modules.dep names none)"

out=$partial/modules/lib/modules/$RELEASE
mkdir -p "$out"
for m in $deps; do
  mkdir -p "$out/$(dirname "$m")"
  cp "$mods/$m" "$out/$m"
  awk -F: -v m="$m" '$1 == m' "$mods/modules.dep" >>"$out/modules.dep"
done

vmlinuz=$(echo "$work"/root/boot/vmlinuz-*)
[[ -f $vmlinuz ]] || die "$kdeb has no /boot/vmlinuz"
cp "$vmlinuz" "$partial/vmlinuz"
cp "$busybox" "$partial/busybox"
echo "$RELEASE" >"$partial/kernel-release"
rm -rf "$work"

# Another run may have finished first; its copy is as good as ours.
if [[ -f $DIR/vmlinuz ]]; then echo "$DIR"; exit 0; fi
rm -rf "$DIR" && mv "$partial" "$DIR"
trap - EXIT
say "VM assets ready in $DIR ($(wc -l <"$DIR/modules/lib/modules/$RELEASE/modules.dep") modules)"
echo "$DIR"
