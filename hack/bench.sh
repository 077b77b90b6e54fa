#!/usr/bin/env bash
# `make bench`: runs every benchmark of docs/benchmarks.md, each writing its part of the results
# into $BENCH_OUT (bin/bench), then hack/benchreport merges them into docs/bench/results.json,
# rewrites the generated section of docs/benchmarks.md and draws the figures in docs/bench.
#
#   make bench                         # everything, about 30 minutes on 2 cores
#   PARTS="token fanout" make bench    # some parts; the others keep their last results
#
# Parts: gobench (a Go benchmark per hot path, raw output for benchstat), motionengine, token,
# fanout, motion (the agent against Debian's motion), fleet (the 1000-node simulation).
# A part that fails is reported, the others are still written, and the run exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

export BENCH_OUT=${BENCH_OUT:-bin/bench}
PARTS=${PARTS:-gobench motionengine token fanout motion fleet}
mkdir -p "$BENCH_OUT"

declare -A script=(
  [gobench]=hack/bench-go.sh
  [motionengine]=hack/bench-motion.sh
  [token]=hack/bench-token.sh
  [fanout]=hack/bench-fanout.sh
  [motion]=hack/bench-motion-vs-debian.sh
  [fleet]=hack/bench-fleet.sh
)
failed=()
for part in $PARTS; do
  [[ -n ${script[$part]:-} ]] || { echo "bench: unknown part '$part' (want: ${!script[*]})" >&2; exit 2; }
  rm -f "$BENCH_OUT/$part.json"
  echo "==> $part: ${script[$part]}" >&2
  start=$SECONDS
  if "${script[$part]}" >"$BENCH_OUT/$part.log" 2>&1; then
    echo "    done in $((SECONDS - start)) s (log: $BENCH_OUT/$part.log)" >&2
  else
    echo "    FAILED after $((SECONDS - start)) s; the last lines of $BENCH_OUT/$part.log:" >&2
    tail -n 20 "$BENCH_OUT/$part.log" >&2
    failed+=("$part")
  fi
  [[ -f $BENCH_OUT/$part.json ]] || { [[ " ${failed[*]} " == *" $part "* ]] || failed+=("$part"); echo "    no $BENCH_OUT/$part.json written" >&2; }
done

go run ./hack/benchreport -in "$BENCH_OUT" -doc docs/benchmarks.md -figures docs/bench
echo "==> results: docs/bench/results.json, tables: docs/benchmarks.md, figures: docs/bench/" >&2
if ((${#failed[@]})); then
  echo "bench: failed: ${failed[*]}" >&2
  exit 1
fi
