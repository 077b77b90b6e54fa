#!/usr/bin/env bash
# The fleet simulation of `make bench` (hack/fleetsim): for each fleet size, a fresh test
# control plane, the real controller binary, and one real agent (the agent package's
# node.Agent) per simulated node in one process, each under a ServiceAccount token bound to its
# Node; it measures rotation and revoke convergence, the steady-state API load and Camera
# status writes, and the controller's cold start and memory, and writes $BENCH_OUT/fleet.json.
#
#   hack/bench-fleet.sh                          # NODES=50,200,1000 STEADY=150s ROUNDS=3
#   NODES=50 STEADY=30s ROUNDS=1 hack/bench-fleet.sh   # a quick look
#   NODES=1000 FLEETSIM_FLAGS="--profile bin/bench/profiles" hack/bench-fleet.sh   # profile each rotation
#
# Needs the test control plane (hack/tools.sh envtest). About 12 minutes with the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."

NODES=${NODES:-50,200,1000}
STEADY=${STEADY:-150s}
ROUNDS=${ROUNDS:-3}
BENCH_OUT=${BENCH_OUT:-bin/bench}

KUBEBUILDER_ASSETS=$(hack/tools.sh envtest)
export KUBEBUILDER_ASSETS
mkdir -p bin "$BENCH_OUT/logs"
go build -o bin/ ./cmd/camfleet-controller ./hack/fleetsim
# The agents share one process: raise the open-file limit for their API server connections.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
bin/fleetsim --nodes "$NODES" --steady "$STEADY" --rounds "$ROUNDS" --controller bin/camfleet-controller \
  --out "$BENCH_OUT" --logs "$BENCH_OUT/logs" ${FLEETSIM_FLAGS:-}
