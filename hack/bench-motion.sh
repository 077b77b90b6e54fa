#!/usr/bin/env bash
# Runs the motion engine benchmarks on one core and summarises them for docs/benchmarks.md:
# min/median/max of ns/op over COUNT runs, allocations, and for each input the ratio
# baseline/engine, computed per run from the two benchmarks measured next to each other in
# that run (the machines are shared and noisy, so only same-run ratios are comparable).
#
#   hack/bench-motion.sh                   # COUNT=5 BENCHTIME=1s
#   COUNT=3 BENCHTIME=200x hack/bench-motion.sh
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${COUNT:-5}
BENCHTIME=${BENCHTIME:-1s}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

go test -run='^$' -bench='^Benchmark(YUYV|MJPEG)$' -benchmem -cpu=1 -count="$COUNT" \
  -benchtime="$BENCHTIME" ./agent/motion | tee "$out" >&2

awk '
function sort(a, n,   i, j, t) { for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t } }
function median(a, n) { return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
/^Benchmark.*ns\/op/ {
  name = $1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
  for (i = 2; i <= NF; i++) { if ($i == "ns/op") ns = $(i-1); if ($i == "allocs/op") al = $(i-1) }
  k = ++n[name]; v[name, k] = ns
  if (al > maxal[name] || k == 1) maxal[name] = al
  if (!(name in seen)) { seen[name] = 1; order[++names] = name }
}
END {
  printf "| benchmark | runs | min ms/frame | median ms/frame | max ms/frame | allocs/frame (max) |\n"
  printf "| --- | --- | --- | --- | --- | --- |\n"
  for (j = 1; j <= names; j++) {
    name = order[j]; m = n[name]
    for (k = 1; k <= m; k++) a[k] = v[name, k]
    sort(a, m)
    printf "| %s | %d | %.3f | %.3f | %.3f | %d |\n", name, m, a[1] / 1e6, median(a, m) / 1e6, a[m] / 1e6, maxal[name]
  }
  printf "\n| input | ratio baseline/engine, min | median | max |\n"
  printf "| --- | --- | --- | --- |\n"
  for (j = 1; j <= names; j++) {
    name = order[j]
    if (name !~ /\/engine$/) continue
    base = name; sub(/\/engine$/, "/baseline", base)
    if (!(base in n)) continue
    m = n[name] < n[base] ? n[name] : n[base]
    for (k = 1; k <= m; k++) r[k] = v[base, k] / v[name, k]
    sort(r, m)
    label = name; sub(/\/engine$/, "", label)
    printf "| %s | %.1fx | %.1fx | %.1fx |\n", label, r[1], median(r, m), r[m]
  }
}' "$out"
