#!/usr/bin/env bash
# Measures the token check and the agent's request path against baselines measured in the
# same run (DESIGN.md, "Speed targets"; these machines are shared and noisy), and writes the
# `make bench` part $BENCH_OUT/token.json:
#   - uncached EdDSA verification (BenchmarkVerifyEdDSA) within 1.3x of crypto/ed25519.Verify
#     alone on the same input (BenchmarkEd25519VerifyBaseline), median of per-round ratios;
#   - a repeated token through the cache (BenchmarkVerifyCached) under 2000 ns/op, 0 allocs/op;
#   - POST /api/ack through the agent's real handler over loopback with keep-alive, against the
#     same route without authentication (hack/requestbench): requests/s and per CPU-second.
#
#   hack/bench-token.sh                                 5 rounds, 1s per benchmark, GOMAXPROCS=1
#   COUNT=10 BENCHTIME=2s REQUEST_DURATION=3s hack/bench-token.sh
#   BENCH_OUT=/tmp/parts hack/bench-token.sh
#
# The test binary is built once and the COUNT rounds run interleaved (baseline, verify, cached,
# then both request handlers; and again): with plain -count=5 every baseline run comes before
# every verify run, and a burst of load from another build during one of them skews the ratio.
# The raw results, in `go test -bench` format, are kept as $BENCH_OUT/token.txt. Exits 1 on a
# missed target.
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_OUT=${BENCH_OUT:-bin/bench}
COUNT=${COUNT:-5}
BENCHTIME=${BENCHTIME:-1s}
REQUEST_DURATION=${REQUEST_DURATION:-2s}
REQUEST_CLIENTS=${REQUEST_CLIENTS:-8}
BENCHES='^(BenchmarkEd25519VerifyBaseline|BenchmarkVerifyEdDSA|BenchmarkVerifyCached)$'

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/token.test" ./internal/token/
go build -o "$tmp/requestbench" ./hack/requestbench
go build -o "$tmp/gobench" ./hack/gobench
mkdir -p "$BENCH_OUT"

raw="$BENCH_OUT/token.txt"
: >"$raw"
for round in $(seq "$COUNT"); do
	echo "==> round $round/$COUNT: token.test -test.bench $BENCHES -test.cpu=1 -test.benchtime=$BENCHTIME; requestbench -rounds 1 -duration $REQUEST_DURATION" >&2
	(cd internal/token && "$tmp/token.test" -test.run '^$' -test.bench "$BENCHES" -test.benchmem \
		-test.count=1 -test.cpu=1 -test.benchtime="$BENCHTIME") | tee -a "$raw" | grep '^Benchmark' >&2
	"$tmp/requestbench" -rounds 1 -duration "$REQUEST_DURATION" -clients "$REQUEST_CLIENTS" | tee -a "$raw" | grep '^Benchmark' >&2
done

"$tmp/gobench" -part token -in "$raw" -out "$BENCH_OUT" -command "hack/bench-token.sh" | tee "$tmp/targets"
! grep -q '^MISSED' "$tmp/targets"
