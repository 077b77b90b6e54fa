#!/usr/bin/env bash
# Compares CPU per frame, side by side in one run, of Debian's motion daemon (package motion,
# 4.5.x) twice (detecting only, and detecting while serving its MJPEG stream to one client at
# the full rate), camfleet-motion (the bare motion engine) and the whole camfleet-agent
# (capture, motion on every frame, events, status, and one MJPEG stream client attached), all
# reading the same 640x480 30 fps MJPEG stream over HTTP on loopback. The agent's target is
# half of motion's CPU per frame with a stream client, like for like. It runs on two streams: a plain
# synthetic scene, and a textured, noisy one whose frames are about 90 KB like a real camera's.
# Each process's utime+stime is read from /proc/<pid>/stat at the start and end of the same
# interval; the frames each was sent come from the stream server's per-client counters.
# Then it reports the agent's resident memory with three VGA cameras and ten stream clients.
#
#   hack/bench-motion-vs-debian.sh            # DURATION=20 WARMUP=5 by default
#   DURATION=60 hack/bench-motion-vs-debian.sh
#   STREAM_CLIENT=0 hack/bench-motion-vs-debian.sh   # the agent without its stream client
#   AGENT_ENV=GOMAXPROCS=1 AGENT_FLAGS="--pprof-address 127.0.0.1:6060" ...   # agent knobs
#
# Needs: go, curl, motion (hack/apt.sh) and the test control plane (hack/tools.sh). Everything
# listens on 127.0.0.1 and every process is killed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20}
WARMUP=${WARMUP:-5}
command -v motion >/dev/null || { echo "motion not found: run hack/apt.sh" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl not found" >&2; exit 1; }
limit=$((2 * (DURATION + WARMUP) + 300))

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
die() { echo "bench: $*" >&2; exit 1; }
wait_for() { # SECONDS WHAT CMD...
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do ((SECONDS < deadline)) || die "timed out waiting for $what"; sleep 0.5; done
}

echo "==> building camfleet-motion, the agent, the controller and the stream server" >&2
assets=$(hack/tools.sh envtest)
export KUBEBUILDER_ASSETS=$assets
go build -o "$work/" ./cmd/camfleet-motion ./cmd/camfleet-agent ./cmd/camfleet-controller ./hack/mjpegserve ./hack/localcluster
kubectl=("$assets/kubectl" --kubeconfig "$work/kubeconfig")
(sleep "$limit"; kill "${pids[@]}" 2>/dev/null) &
pids+=($!)

echo "==> starting a control plane, the controller and an agent" >&2
"$work/localcluster" --kubeconfig "$work/kubeconfig" >"$work/cluster.log" 2>&1 &
pids+=($!)
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
  source: {type: MJPEGURL, mjpegURL: "$2", width: 640, height: 480, fps: 30}
  motion: {eventGap: 10s}
  stream: {maxClients: 20}
EOF2
}
# watch NAME: one stream client on a camera, reading and discarding.
watch() { curl -fsS -o /dev/null -H "Authorization: Bearer $token" "http://127.0.0.1:18190/api/cameras/bench/$1/stream.mjpeg" & pids+=($!); }
ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
hz=$(getconf CLK_TCK)

printf '%-10s %-22s %8s %8s %10s %14s %10s %12s\n' scene process frames fps cpu-ms cpu-ms/frame vs-motion vs-m+stream
for scene in plain textured; do
  "$work/mjpegserve" -listen 127.0.0.1:0 -fps 30 -width 640 -height 480 -scene "$scene" >"$work/serve.out" 2>"$work/serve.err" &
  serve_pid=$!
  pids+=("$serve_pid")
  url=
  for _ in $(seq 240); do url=$(head -n1 "$work/serve.out" 2>/dev/null || true); [[ -n $url ]] && break; sleep 0.5; done
  [[ -n $url ]] || die "stream server did not start: $(cat "$work/serve.err")"
  base=${url%/stream.mjpeg}
  frames() { curl -fsS "$base/stats" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
  # motion_conf NAME STREAMPORT: a motion configuration reading the stream as client NAME,
  # serving its own MJPEG stream on STREAMPORT (0: none).
  motion_conf() {
    mkdir -p "$work/target-$1"
    cat >"$work/$1.conf" <<EOF2
daemon off
setup_mode off
log_file $work/$1-$scene.log
log_level 6
target_dir $work/target-$1
pid_file $work/$1.pid
netcam_url $url?client=$1
width 640
height 480
framerate 30
threshold 1500
event_gap 10
picture_output off
movie_output off
snapshot_interval 0
webcontrol_port 0
stream_port $2
stream_localhost on
stream_maxrate 30
stream_quality 80
stream_auth_method 0
EOF2
  }
  motion_conf motion 0
  motion_conf motionstream 18191
  motion -n -c "$work/motion.conf" >"$work/motion.out" 2>&1 &
  motion_pid=$!
  pids+=("$motion_pid")
  motion -n -c "$work/motionstream.conf" >"$work/motionstream.out" 2>&1 &
  ms_pid=$!
  pids+=("$ms_pid")
  curl -sS --retry 30 --retry-delay 1 --retry-connrefused -o /dev/null http://127.0.0.1:18191/ 2>/dev/null &
  pids+=($!)
  "$work/camfleet-motion" --print events --event-gap 10 "$url?client=camfleet" >"$work/camfleet-$scene.out" 2>"$work/camfleet.err" &
  cm_pid=$!
  pids+=("$cm_pid")
  camera cam "$url?client=agent"
  wait_for 60 "the agent's camera" "${kubectl[@]}" wait -n bench camera/cam --for=condition=Ready --timeout=1s
  [[ ${STREAM_CLIENT:-1} == 0 ]] || watch cam
  for _ in $(seq 60); do
    m=$(frames motion); c=$(frames camfleet); a=$(frames agent); s2=$(frames motionstream)
    [[ ${m:-0} -gt 0 && ${c:-0} -gt 0 && ${a:-0} -gt 0 && ${s2:-0} -gt 0 ]] && break
    sleep 0.5
  done
  [[ ${m:-0} -gt 0 && ${c:-0} -gt 0 && ${a:-0} -gt 0 ]] || die "clients did not connect (see $work)"
  sleep "$WARMUP"
  m0=$(frames motion); c0=$(frames camfleet); a0=$(frames agent); s0=$(frames motionstream)
  tm0=$(ticks "$motion_pid"); tc0=$(ticks "$cm_pid"); ta0=$(ticks "$agent_pid"); ts0=$(ticks "$ms_pid")
  sleep "$DURATION"
  m1=$(frames motion); c1=$(frames camfleet); a1=$(frames agent); s1=$(frames motionstream)
  tm1=$(ticks "$motion_pid"); tc1=$(ticks "$cm_pid"); ta1=$(ticks "$agent_pid"); ts1=$(ticks "$ms_pid")
  events_agent=$(curl -fsS -H "Authorization: Bearer $token" http://127.0.0.1:18190/api/cameras/bench/cam/events | grep -o '"id":' | wc -l)
  kill "$cm_pid" "$motion_pid" "$ms_pid" 2>/dev/null || true
  wait "$cm_pid" "$motion_pid" "$ms_pid" 2>/dev/null || true
  awk -v hz="$hz" -v s="$scene" -v mf=$((m1 - m0)) -v cf=$((c1 - c0)) -v af=$((a1 - a0)) -v sf=$((s1 - s0)) \
    -v mt=$((tm1 - tm0)) -v ct=$((tc1 - tc0)) -v at=$((ta1 - ta0)) -v st=$((ts1 - ts0)) -v d="$DURATION" 'BEGIN {
    mms = mt * 1000 / hz; cms = ct * 1000 / hz; ams = at * 1000 / hz; sms = st * 1000 / hz; mpf = mms / mf; spf = sms / sf
    printf "%-10s %-22s %8d %8.1f %10.0f %14.3f %10s %12s\n", s, "motion 4.5.1", mf, mf / d, mms, mpf, "1", ""
    printf "%-10s %-22s %8d %8.1f %10.0f %14.3f %10.3f %12s\n", s, "motion 4.5.1 + stream", sf, sf / d, sms, spf, spf / mpf, "1"
    printf "%-10s %-22s %8d %8.1f %10.0f %14.3f %10.3f %12.3f\n", s, "camfleet-motion", cf, cf / d, cms, cms / cf, (cms / cf) / mpf, (cms / cf) / spf
    printf "%-10s %-22s %8d %8.1f %10.0f %14.3f %10.3f %12.3f  (target <= 0.5)\n", s, "camfleet-agent + stream", af, af / d, ams, ams / af, (ams / af) / mpf, (ams / af) / spf
  }'
  echo "  events: motion $(grep -c 'Motion detected' "$work/motion-$scene.log" || true), motion+stream $(grep -c 'Motion detected' "$work/motionstream-$scene.log" || true), camfleet-motion $(grep -c '^event' "$work/camfleet-$scene.out" || true), agent $events_agent (ring)"
  kill "$serve_pid" 2>/dev/null || true
  "${kubectl[@]}" delete -n bench camera cam --wait=true >/dev/null
done

echo "==> agent memory: three VGA cameras (textured) and ten stream clients" >&2
"$work/mjpegserve" -listen 127.0.0.1:0 -fps 30 -width 640 -height 480 -scene textured >"$work/serve.out" 2>"$work/serve.err" &
pids+=($!)
url=
for _ in $(seq 240); do url=$(head -n1 "$work/serve.out" 2>/dev/null || true); [[ -n $url ]] && break; sleep 0.5; done
for i in 1 2 3; do camera "cam$i" "$url?client=agent$i"; done
for i in 1 2 3; do wait_for 60 "cam$i" "${kubectl[@]}" wait -n bench "camera/cam$i" --for=condition=Ready --timeout=1s; done
for i in $(seq 10); do watch "cam$(( (i % 3) + 1 ))"; done
sleep "$WARMUP"
peak=0
for _ in $(seq "$DURATION"); do
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$agent_pid/status")
  ((rss > peak)) && peak=$rss
  sleep 1
done
clients=$(curl -fsS http://127.0.0.1:18190/metrics | awk '/^camfleet_agent_stream_clients/ {s += $2} END {print s}')
echo "agent RSS with 3 cameras and $clients stream clients: peak $((peak / 1024)) MiB over ${DURATION}s (aim: under 64 MiB)"
