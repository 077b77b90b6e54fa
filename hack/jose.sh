#!/usr/bin/env bash
# Installs the npm "jose" package (an independent JOSE implementation) into the cache outside
# the clone, for the interop tests, and prints the node_modules directory to use as NODE_PATH.
set -euo pipefail
JOSE_VERSION=${JOSE_VERSION:-5.9.6}
CACHE=${CAMFLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/camfleet}
dir=$CACHE/jose-v$JOSE_VERSION
command -v node >/dev/null || { echo "hack/jose.sh: node is not installed (apt-get install nodejs npm)" >&2; exit 1; }
if [[ ! -f $dir/node_modules/jose/package.json ]]; then
  echo "==> installing jose@$JOSE_VERSION from the npm registry" >&2
  rm -rf "$dir.partial" && mkdir -p "$dir.partial"
  npm install --silent --no-audit --no-fund --prefix "$dir.partial" "jose@$JOSE_VERSION" >&2 ||
    { echo "hack/jose.sh: npm install jose@$JOSE_VERSION failed" >&2; exit 1; }
  rm -rf "$dir" && mv "$dir.partial" "$dir"
fi
echo "$dir/node_modules"
