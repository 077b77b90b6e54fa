#!/usr/bin/env bash
# Runs the motion engine benchmarks on one core and writes the `make bench` part
# $BENCH_OUT/motionengine.json: min/median/max ms per frame over COUNT rounds, allocations, and
# for each input the ratio baseline/engine taken within each round, against the targets of
# DESIGN.md ("Speed targets": YUYV 640x480 under 0.2 ms a frame, MJPEG at least 4x faster than
# image/jpeg, no allocations per frame).
#
#   hack/bench-motion.sh                           # COUNT=5 BENCHTIME=1s
#   COUNT=3 BENCHTIME=200x hack/bench-motion.sh
#   BENCH_OUT=/tmp/parts hack/bench-motion.sh
#
# The test binary is built once and run COUNT times with -test.count=1, so that every round
# measures each engine next to its baseline: with -count=5 go test runs one benchmark five
# times before the next, and a burst of load from another build would fall on one side only.
# The raw results are kept as $BENCH_OUT/motionengine.txt (benchstat's input).
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_OUT=${BENCH_OUT:-bin/bench}
COUNT=${COUNT:-5}
BENCHTIME=${BENCHTIME:-1s}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/motion.test" ./agent/motion
go build -o "$tmp/gobench" ./hack/gobench
mkdir -p "$BENCH_OUT"

raw="$BENCH_OUT/motionengine.txt"
: >"$raw"
for round in $(seq "$COUNT"); do
	echo "==> round $round/$COUNT: motion.test -test.bench ^Benchmark(YUYV|MJPEG)\$ -test.cpu=1 -test.benchtime=$BENCHTIME" >&2
	(cd agent/motion && "$tmp/motion.test" -test.run '^$' -test.bench '^Benchmark(YUYV|MJPEG)$' -test.benchmem \
		-test.count=1 -test.cpu=1 -test.benchtime="$BENCHTIME") | tee -a "$raw" | grep '^Benchmark' >&2
done

"$tmp/gobench" -part motionengine -in "$raw" -out "$BENCH_OUT" -command "hack/bench-motion.sh"
