#!/usr/bin/env bash
# Runs one Go benchmark per hot path (token verification, permission match, motion step,
# stream fan-out, key reload) with -count and -benchmem, keeps the raw output as
# $BENCH_OUT/gobench.txt for benchstat, and writes the `make bench` part $BENCH_OUT/gobench.json
# (min/median/max ns/op, B/op, allocs/op per benchmark).
#
#   hack/bench-go.sh                            # COUNT=5 BENCHTIME=200ms
#   COUNT=10 BENCHTIME=1s hack/bench-go.sh
#   benchstat old/gobench.txt bin/bench/gobench.txt   # compare with an earlier run
#
# The benchmarks run on one core (-cpu=1) except the fan-out, whose server and clients need
# more than one; a later run is comparable only on the same machine.
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_OUT=${BENCH_OUT:-bin/bench}
COUNT=${COUNT:-5}
BENCHTIME=${BENCHTIME:-200ms}

mkdir -p "$BENCH_OUT"
raw="$BENCH_OUT/gobench.txt"
: >"$raw"
bench() { # package, benchmark pattern, extra go test flags...
	local pkg=$1 pattern=$2
	shift 2
	echo "==> go test -run ^\$ -bench '$pattern' -benchmem -count=$COUNT -benchtime=$BENCHTIME $* $pkg" >&2
	go test -run '^$' -bench "$pattern" -benchmem -count="$COUNT" -benchtime="$BENCHTIME" "$@" "$pkg" | tee -a "$raw" >&2
}
bench ./internal/token '^(BenchmarkEd25519VerifyBaseline|BenchmarkVerifyEdDSA|BenchmarkVerifyCached|BenchmarkVerifyES256|BenchmarkVerifyRS256|BenchmarkRejectForged)$' -cpu=1
bench ./internal/permission '^BenchmarkAllows$' -cpu=1
bench ./agent/motion '^(BenchmarkYUYV|BenchmarkMJPEG)$' -cpu=1
bench ./agent/keyring '^BenchmarkKeyReload$' -cpu=1
bench ./agent/stream '^(BenchmarkFanout|BenchmarkFanoutBaseline)$'

go run ./hack/gobench -part gobench -in "$raw" -out "$BENCH_OUT" -command "hack/bench-go.sh"
