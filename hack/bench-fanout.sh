#!/usr/bin/env bash
# Measures the agent's MJPEG fan-out (agent/stream) over real HTTP on 127.0.0.1 and writes the
# `make bench` part $BENCH_OUT/fanout.json (hack/fanoutbench): one 640x480 camera at 30 fps
# with textured ~80 KB frames to 1, 10, 100 and 300 clients, client-frames per second and per
# CPU-second of the server against a plain writer sending the same bytes at the same pace (the
# floor for this machine), and whether one slow client among ten lowers the others' rate.
# Hub and plain writer alternate within each round; ratios are taken within a round.
#
#   hack/bench-fanout.sh                                 # ROUNDS=3 DURATION=3s: about 2.5 minutes
#   ROUNDS=1 DURATION=2s CLIENTS=1,10 hack/bench-fanout.sh
#   BENCH_OUT=/tmp/parts hack/bench-fanout.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_OUT=${BENCH_OUT:-bin/bench}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-3s}
WARMUP=${WARMUP:-1s}
CLIENTS=${CLIENTS:-1,10,100,300}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/fanoutbench" ./hack/fanoutbench
"$tmp/fanoutbench" -rounds "$ROUNDS" -duration "$DURATION" -warmup "$WARMUP" -clients "$CLIENTS" -out "$BENCH_OUT"
