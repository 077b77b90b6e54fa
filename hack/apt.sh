#!/usr/bin/env bash
# Installs the Debian packages the tests and benchmarks need (listed in hack/apt-packages.txt)
# when any is missing. Runs as root on the project's machines; says what it does.
set -euo pipefail
list=$(dirname "$0")/apt-packages.txt
missing=()
while read -r pkg _; do
  [[ -z $pkg || $pkg == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done <"$list"
((${#missing[@]} == 0)) && exit 0
echo "==> installing Debian packages: ${missing[*]}" >&2
sudo=; [[ $(id -u) == 0 ]] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >&2 || { echo "hack/apt.sh: apt-get update failed" >&2; exit 1; }
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
  { echo "hack/apt.sh: could not install ${missing[*]}" >&2; exit 1; }
