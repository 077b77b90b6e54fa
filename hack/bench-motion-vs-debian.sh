#!/usr/bin/env bash
# Compares the CPU per frame of camfleet-motion with Debian's motion daemon (package motion,
# 4.5.x) reading the same 640x480 30 fps MJPEG stream over HTTP on loopback, with motion
# detection on and no picture or movie output. Both run side by side; their utime+stime is
# read from /proc/<pid>/stat at the start and end of the same interval, and the frames each
# was sent over that interval come from the stream server's per-client counters.
#
#   hack/bench-motion-vs-debian.sh            # DURATION=20 WARMUP=5 by default
#   DURATION=60 hack/bench-motion-vs-debian.sh
#
# Needs: go, curl, and motion (hack/apt.sh installs it). Everything listens on 127.0.0.1 and
# the run is bounded: each process is killed at DURATION+WARMUP+60 s at the latest.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20}
WARMUP=${WARMUP:-5}
command -v motion >/dev/null || { echo "motion not found: run hack/apt.sh" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl not found" >&2; exit 1; }
limit=$((DURATION + WARMUP + 60))

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "==> building camfleet-motion and the stream server" >&2
go build -o "$work/camfleet-motion" ./cmd/camfleet-motion
go build -o "$work/mjpegserve" ./hack/mjpegserve

"$work/mjpegserve" -listen 127.0.0.1:0 -fps 30 -width 640 -height 480 >"$work/serve.out" 2>"$work/serve.err" &
pids+=($!)
url=
for _ in $(seq 120); do
  url=$(head -n1 "$work/serve.out" 2>/dev/null || true)
  [[ -n $url ]] && break
  sleep 0.5
done
[[ -n $url ]] || { echo "stream server did not start: $(cat "$work/serve.err")" >&2; exit 1; }
base=${url%/stream.mjpeg}
echo "==> serving $url" >&2

mkdir -p "$work/target"
cat >"$work/motion.conf" <<EOF
daemon off
setup_mode off
log_file $work/motion.log
log_level 6
target_dir $work/target
pid_file $work/motion.pid
netcam_url $url?client=motion
width 640
height 480
framerate 30
threshold 1500
event_gap 10
picture_output off
movie_output off
snapshot_interval 0
webcontrol_port 0
stream_port 0
EOF
motion -n -c "$work/motion.conf" >"$work/motion.out" 2>&1 &
motion_pid=$!
pids+=("$motion_pid")
"$work/camfleet-motion" --print events --event-gap 10 "$url?client=camfleet" \
  >"$work/camfleet.out" 2>"$work/camfleet.err" &
camfleet_pid=$!
pids+=("$camfleet_pid")

# A watchdog bounds the run whatever happens: the measured processes are started directly
# (not under timeout) so that $! is their own pid for /proc.
(sleep "$limit"; kill "${pids[@]}" 2>/dev/null) &
pids+=($!)

# frames NAME: frames the server has sent to client NAME.
frames() { curl -fsS "$base/stats" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
# ticks PID: utime+stime of the process, all threads, in clock ticks.
ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

for _ in $(seq 60); do
  m=$(frames motion); c=$(frames camfleet)
  [[ ${m:-0} -gt 0 && ${c:-0} -gt 0 ]] && break
  sleep 0.5
done
[[ ${m:-0} -gt 0 && ${c:-0} -gt 0 ]] || { echo "clients did not connect (motion log: $work/motion.log)" >&2; tail -5 "$work/motion.log" >&2; exit 1; }
sleep "$WARMUP"

m0=$(frames motion); c0=$(frames camfleet); tm0=$(ticks "$motion_pid"); tc0=$(ticks "$camfleet_pid")
sleep "$DURATION"
m1=$(frames motion); c1=$(frames camfleet); tm1=$(ticks "$motion_pid"); tc1=$(ticks "$camfleet_pid")

kill -INT "$camfleet_pid"
wait "$camfleet_pid" || true
kill -TERM "$motion_pid" 2>/dev/null || true
wait "$motion_pid" 2>/dev/null || true

hz=$(getconf CLK_TCK)
awk -v hz="$hz" -v d="$DURATION" -v mf=$((m1 - m0)) -v cf=$((c1 - c0)) -v mt=$((tm1 - tm0)) -v ct=$((tc1 - tc0)) 'BEGIN {
  mms = mt * 1000 / hz; cms = ct * 1000 / hz
  printf "%-16s %8s %8s %10s %14s\n", "process", "frames", "fps", "cpu-ms", "cpu-ms/frame"
  printf "%-16s %8d %8.1f %10.0f %14.3f\n", "motion 4.5.1", mf, mf / d, mms, mms / mf
  printf "%-16s %8d %8.1f %10.0f %14.3f\n", "camfleet-motion", cf, cf / d, cms, cms / cf
  printf "ratio camfleet-motion/motion CPU per frame: %.3f (target <= 0.5)\n", (cms / cf) / (mms / mf)
}'
echo "camfleet-motion's own summary: $(tail -n1 "$work/camfleet.err")"
echo "events: camfleet-motion $(grep -c '^event' "$work/camfleet.out" || true), motion $(grep -c 'Motion detected' "$work/motion.log" || true)"
