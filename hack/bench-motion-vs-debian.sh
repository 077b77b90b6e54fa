#!/usr/bin/env bash
# Compares CPU per frame, side by side in one run, of Debian's motion daemon (package motion,
# 4.5.x) twice (detecting only, and detecting while serving its MJPEG stream to one client at
# the full rate), camfleet-motion (the bare motion engine) and the whole camfleet-agent
# (capture, motion on every frame, events, status, and one MJPEG stream client attached), all
# reading the same 640x480 30 fps MJPEG stream over HTTP on loopback. The agent's target is
# half of motion's CPU per frame with a stream client, like for like. It runs on two streams
# from hack/mjpegserve: a plain synthetic scene, and a textured, noisy one whose frames are
# about 90 KB like a real camera's. Each process's utime+stime is read from /proc/<pid>/stat at
# the start and end of the same interval; the frames each was sent come from the stream
# server's per-client counters. RUNS runs, the two streams interleaved; ratios are against
# motion in the same run, given as min/median/max over the runs.
#
# It also checks that every detector finds the stream's scripted motion and nothing else: each
# 10 s loop is 5 s of an empty scene, then 5 s of a block crossing it; every detector's event
# gap is 2 s, so each crossing is its own event. The server records when each client was sent
# each phase; each detector's event start times (motion's on_event_start hook, the agent's
# events API, camfleet-motion's printed start frames) are placed on that timeline: an event in
# a moving phase (or up to 1 s after it) is found motion, one later in a still phase is false.
# Then it reports the agent's peak resident memory with three VGA cameras and ten stream clients.
#
# hack/motionbench prints each run and writes the results as part "motion" (tables, targets,
# the motion-cpu.svg plot's data) into $BENCH_OUT for `make bench`.
#
#   hack/bench-motion-vs-debian.sh               # RUNS=3 DURATION=30 WARMUP=5: about 6 minutes
#   RUNS=1 DURATION=5 WARMUP=2 hack/bench-motion-vs-debian.sh   # a quick look
#   BENCH_OUT=/tmp/bench hack/bench-motion-vs-debian.sh          # results elsewhere (default bin/bench)
#   STREAM_CLIENT=0 hack/bench-motion-vs-debian.sh   # the agent without its stream client
#   AGENT_ENV=GOMAXPROCS=1 AGENT_FLAGS="--pprof-address 127.0.0.1:6060" ...   # agent knobs
#   KEEP=1 hack/bench-motion-vs-debian.sh        # keep the working directory (logs, raw figures)
#
# Needs: go, curl, motion (hack/apt.sh) and the test control plane (hack/tools.sh). Everything
# listens on 127.0.0.1 and every process is killed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
DURATION=${DURATION:-30} # whole 10 s loops, so still and moving frames weigh as in the clip
WARMUP=${WARMUP:-5}
BENCH_OUT=${BENCH_OUT:-bin/bench}
# The stream's script of motion, and an event gap short enough that the detectors end each
# event well inside the still phase (motion's event_gap is whole seconds).
LOOP=10 STILL=5 GAP=2 FPS=30
command -v motion >/dev/null || { echo "motion not found: run hack/apt.sh" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl not found" >&2; exit 1; }
limit=$((RUNS * 2 * (DURATION + WARMUP + 60) + DURATION + WARMUP + 400))

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ ${KEEP:-0} == 1 ]]; then echo "bench: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
die() { echo "bench: $*" >&2; exit 1; }
wait_for() { # SECONDS WHAT CMD...
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do ((SECONDS < deadline)) || die "timed out waiting for $what"; sleep 0.5; done
}

echo "==> building camfleet-motion, the agent, the controller, the stream server and motionbench" >&2
assets=$(hack/tools.sh envtest)
export KUBEBUILDER_ASSETS=$assets
go build -o "$work/" ./cmd/camfleet-motion ./cmd/camfleet-agent ./cmd/camfleet-controller ./hack/mjpegserve ./hack/localcluster ./hack/motionbench
kubectl=("$assets/kubectl" --kubeconfig "$work/kubeconfig")
main_pid=$$
(sleep "$limit"; echo "bench: over ${limit}s, stopping" >&2; kill "$main_pid" 2>/dev/null) &
pids+=($!)

echo "==> rendering the streams, starting a control plane, the controller and an agent" >&2
declare -A base
for scene in plain textured; do
  "$work/mjpegserve" -listen 127.0.0.1:0 -fps "$FPS" -width 640 -height 480 -seconds "$LOOP" -still "$STILL" -scene "$scene" \
    >"$work/serve-$scene.out" 2>"$work/serve-$scene.err" &
  pids+=($!)
done
"$work/localcluster" --kubeconfig "$work/kubeconfig" >"$work/cluster.log" 2>&1 &
pids+=($!)
for scene in plain textured; do
  url=
  for _ in $(seq 240); do url=$(head -n1 "$work/serve-$scene.out" 2>/dev/null || true); [[ -n $url ]] && break; sleep 0.5; done
  [[ -n $url ]] || die "stream server did not start: $(cat "$work/serve-$scene.err")"
  base[$scene]=${url%/stream.mjpeg}
done
wait_for 120 "the control plane" grep -q '^ready' "$work/cluster.log"
"${kubectl[@]}" create namespace bench >/dev/null
# No kubelet registers this machine: its Node is made by hand, or cameras are NodeNotFound.
printf 'apiVersion: v1\nkind: Node\nmetadata:\n  name: bench-node\n' | "${kubectl[@]}" create -f - >/dev/null
"${kubectl[@]}" apply -n bench -f config/samples/camfleet_users_secret.yaml -f config/samples/camfleet_v1alpha1_tokenpolicy.yaml >/dev/null
"$work/camfleet-controller" --kubeconfig "$work/kubeconfig" --metrics-bind-address 0 --health-probe-bind-address 127.0.0.1:0 \
  --token-service-bind-address 127.0.0.1:18182 --token-service-url http://127.0.0.1:18182 >"$work/controller.log" 2>&1 &
pids+=($!)
"${kubectl[@]}" wait -n bench tokenpolicy/home --for=condition=Ready --timeout=60s >/dev/null
env ${AGENT_ENV:-} "$work/camfleet-agent" --kubeconfig "$work/kubeconfig" --node-name bench-node --listen-address 127.0.0.1:18190 \
  --advertise-url http://127.0.0.1:18190 --token-service-url http://127.0.0.1:18182 --state-dir "$work/agent" ${AGENT_FLAGS:-} >"$work/agent.log" 2>&1 &
agent_pid=$!
pids+=("$agent_pid")
wait_for 60 "the agent" curl -fsS http://127.0.0.1:18190/readyz
token=$(curl -fsS -XPOST http://127.0.0.1:18190/api/login -d '{"user":"alice","pass":"camfleet-demo","policy":"bench/home"}' | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
[[ -n $token ]] || die "could not log in through the agent"

# camera NAME URL: a Camera on the agent's node reading URL.
camera() {
  "${kubectl[@]}" apply -n bench -f - >/dev/null <<EOF2
apiVersion: camfleet.io/v1alpha1
kind: Camera
metadata: {name: $1}
spec:
  nodeName: bench-node
  tokenPolicyRef: {name: home}
  source: {type: MJPEGURL, mjpegURL: "$2", width: 640, height: 480, fps: $FPS}
  motion: {eventGap: ${GAP}s}
  stream: {maxClients: 20}
EOF2
}
# watch NAME: one stream client on a camera, reading and discarding; its pid in watch_pid.
watch() {
  curl -fsS -o /dev/null -H "Authorization: Bearer $token" "http://127.0.0.1:18190/api/cameras/bench/$1/stream.mjpeg" &
  watch_pid=$!
  pids+=("$watch_pid")
}
ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
now() { date +%s.%N; }
# frames SCENE CLIENT: the frames the scene's server has sent that client.
frames() { curl -fsS "${base[$1]}/stats" | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"; }
printf '#!/bin/sh\n# on_event_start: note when motion started an event.\ndate +%%s.%%N >>"$1"\n' >"$work/hook.sh"
chmod +x "$work/hook.sh"

# measure SCENE RUN: one run on one stream, its raw figures into $work/runs/SCENE-RUN.
measure() {
  local scene=$1 n=$2 dir="$work/runs/$1-$2" url="${base[$1]}/stream.mjpeg"
  mkdir -p "$dir"
  # motion_conf NAME STREAMPORT: a motion configuration reading the stream as client NAME-RUN,
  # serving its own MJPEG stream on STREAMPORT (0: none), noting each event's start.
  motion_conf() {
    mkdir -p "$work/target-$1"
    cat >"$work/$1.conf" <<EOF2
daemon off
setup_mode off
log_file $dir/$1.log
log_level 6
target_dir $work/target-$1
pid_file $work/$1.pid
netcam_url $url?client=$1-$n
width 640
height 480
framerate $FPS
threshold 1500
event_gap $GAP
on_event_start $work/hook.sh $dir/events-$1.txt
picture_output off
movie_output off
snapshot_interval 0
webcontrol_port 0
stream_port $2
stream_localhost on
stream_maxrate $FPS
stream_quality 80
stream_auth_method 0
EOF2
  }
  motion_conf motion 0
  motion_conf motionstream 18191
  motion -n -c "$work/motion.conf" >"$dir/motion.out" 2>&1 &
  local motion_pid=$!
  pids+=("$motion_pid")
  motion -n -c "$work/motionstream.conf" >"$dir/motionstream.out" 2>&1 &
  local ms_pid=$!
  pids+=("$ms_pid")
  curl -sS --retry 30 --retry-delay 1 --retry-connrefused -o /dev/null http://127.0.0.1:18191/ 2>/dev/null &
  pids+=($!)
  "$work/camfleet-motion" --print events --event-gap $((GAP * FPS)) "$url?client=camfleet-$n" >"$dir/camfleet.out" 2>"$dir/camfleet.err" &
  local cm_pid=$!
  pids+=("$cm_pid")
  camera cam "$url?client=agent-$n"
  wait_for 60 "the agent's camera" "${kubectl[@]}" wait -n bench camera/cam --for=condition=Ready --timeout=1s
  watch_pid=
  [[ ${STREAM_CLIENT:-1} == 0 ]] || watch cam
  local m c a s
  for _ in $(seq 60); do
    m=$(frames "$scene" "motion-$n"); c=$(frames "$scene" "camfleet-$n"); a=$(frames "$scene" "agent-$n"); s=$(frames "$scene" "motionstream-$n")
    [[ ${m:-0} -gt 0 && ${c:-0} -gt 0 && ${a:-0} -gt 0 && ${s:-0} -gt 0 ]] && break
    sleep 0.5
  done
  [[ ${m:-0} -gt 0 && ${c:-0} -gt 0 && ${a:-0} -gt 0 && ${s:-0} -gt 0 ]] || die "clients did not connect (see $work)"
  sleep "$WARMUP"
  local -A f0 t0
  local key agent_end
  declare -A pidof=([motion]=$motion_pid [motionstream]=$ms_pid [camfleet]=$cm_pid [agent]=$agent_pid)
  local f1 t1 start end
  start=$(now)
  for key in motion motionstream camfleet agent; do f0[$key]=$(frames "$scene" "$key-$n"); t0[$key]=$(ticks "${pidof[$key]}"); done
  sleep "$DURATION"
  : >"$dir/cpu.tsv"
  for key in motion motionstream camfleet agent; do
    f1=$(frames "$scene" "$key-$n"); t1=$(ticks "${pidof[$key]}")
    printf '%s\t%d\t%d\n' "$key" $((${f1:-0} - ${f0[$key]:-0})) $((t1 - ${t0[$key]})) >>"$dir/cpu.tsv"
  done
  end=$(now)
  # Stop the detectors (camfleet-motion prints its open event on SIGTERM), then read the
  # agent's events and note when, so that its timeline is cut there.
  kill "$cm_pid" "$motion_pid" "$ms_pid" 2>/dev/null || true
  wait "$cm_pid" "$motion_pid" "$ms_pid" 2>/dev/null || true
  agent_end=$(now)
  curl -fsS -H "Authorization: Bearer $token" http://127.0.0.1:18190/api/cameras/bench/cam/events >"$dir/agent-events.json"
  printf 'scene\t%s\nrun\t%d\nhz\t%d\nduration\t%s\nmotion\t%s\nend_agent\t%s\n' "$scene" "$n" "$(getconf CLK_TCK)" "$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.2f", b - a}')" \
    "$(motion -h 2>&1 | sed -n '1s/^motion Version \([^,]*\),.*/motion \1/p')" "$agent_end" >"$dir/info.tsv"
  [[ -z $watch_pid ]] || kill "$watch_pid" 2>/dev/null || true
  "${kubectl[@]}" delete -n bench camera cam --wait=true >/dev/null
  curl -fsS "${base[$scene]}/clip" >"$dir/clip.json"
  for key in motion motionstream camfleet agent; do curl -fsS "${base[$scene]}/phases?client=$key-$n" >"$dir/phases-$key.json"; done
  echo "==> $scene stream, run $n of $RUNS" >&2
  "$work/motionbench" run "$dir"
}

for n in $(seq "$RUNS"); do
  for scene in plain textured; do measure "$scene" "$n"; done
done

echo "==> agent memory: three VGA cameras (textured) and ten stream clients" >&2
url="${base[textured]}/stream.mjpeg"
for i in 1 2 3; do camera "cam$i" "$url?client=agentmem$i"; done
for i in 1 2 3; do wait_for 60 "cam$i" "${kubectl[@]}" wait -n bench "camera/cam$i" --for=condition=Ready --timeout=1s; done
for i in $(seq 10); do watch "cam$(( (i % 3) + 1 ))"; done
sleep "$WARMUP"
peak=0
for _ in $(seq "$DURATION"); do
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$agent_pid/status")
  ((rss > peak)) && peak=$rss
  sleep 1
done
clients=$(curl -fsS http://127.0.0.1:18190/metrics | awk '/^camfleet_agent_stream_clients/ {s += $2} END {print s + 0}')
printf 'peak_kib\t%d\nclients\t%d\ncameras\t3\nseconds\t%d\n' "$peak" "$clients" "$DURATION" >"$work/memory.tsv"
echo "agent RSS with 3 cameras and $clients stream clients: peak $((peak / 1024)) MiB over ${DURATION}s (aim: under 64 MiB)"

notes=()
[[ ${STREAM_CLIENT:-1} != 0 ]] || notes+=(-note "Run without the agent's stream client (STREAM_CLIENT=0): the agent's ratio is not like for like.")
[[ -z ${AGENT_ENV:-} ]] || notes+=(-note "The agent ran with AGENT_ENV=${AGENT_ENV}.")
[[ -z ${AGENT_FLAGS:-} ]] || notes+=(-note "The agent ran with AGENT_FLAGS=${AGENT_FLAGS}.")
echo "==> summary" >&2
"$work/motionbench" part -out "$BENCH_OUT" -memory "$work/memory.tsv" "${notes[@]}" "$work"/runs/*
