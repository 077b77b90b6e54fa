#!/usr/bin/env bash
# Runs camfleet's main job locally: a control plane (kube-apiserver + etcd) with the CRDs, the
# samples applied, the controller, and an agent serving the sample test-pattern camera. Ctrl-C
# stops everything.
#
#   hack/demo.sh           run until interrupted
#   hack/demo.sh --smoke   start everything, check it works, stop (used by `make test`)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
smoke=false; [[ ${1:-} == --smoke ]] && smoke=true
state=${CAMFLEET_DEMO_DIR:-}
made_state=false
[[ -n $state ]] || { state=$(mktemp -d -t camfleet-demo-XXXX); made_state=true; }
metrics_port=${CAMFLEET_DEMO_METRICS_PORT:-18080}
probe_port=${CAMFLEET_DEMO_PROBE_PORT:-18081}
token_port=${CAMFLEET_DEMO_TOKEN_PORT:-18082}
token_url=http://127.0.0.1:$token_port
agent_port=${CAMFLEET_DEMO_AGENT_PORT:-18090}
agent_url=http://127.0.0.1:$agent_port
ns=camfleet-demo
# The demo machine plays one camera node; the sample test-pattern camera moves onto it.
node=${CAMFLEET_DEMO_NODE:-demo-node}
mkdir -p "$state/bin"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'hack/demo.sh: %s\n' "$*" >&2; exit 1; }
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # A smoke run leaves nothing behind; an interactive one keeps its logs for reading.
  if $smoke && $made_state; then rm -rf "$state"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds.
wait_for() {
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out waiting for $what (logs in $state)"
    sleep 0.5
  done
}

assets=$(hack/tools.sh envtest)
export KUBEBUILDER_ASSETS=$assets
kubectl=("$assets/kubectl" --kubeconfig "$state/kubeconfig")

say "building the controller and the agent"
go build -o "$state/bin/" ./cmd/camfleet-controller ./cmd/camfleet-agent ./hack/localcluster

say "starting a local control plane (kube-apiserver and etcd)"
"$state/bin/localcluster" --kubeconfig "$state/kubeconfig" >"$state/localcluster.log" 2>&1 &
pids+=($!)
wait_for 120 "the control plane" grep -q '^ready' "$state/localcluster.log"

say "applying the samples in namespace $ns"
"${kubectl[@]}" create namespace "$ns" >/dev/null
"${kubectl[@]}" apply -n "$ns" -k config/samples >&2
"${kubectl[@]}" patch -n "$ns" camera test-pattern --type merge -p "{\"spec\":{\"nodeName\":\"$node\"}}" >&2
# No kubelet registers the demo machine, so its Node object is made by hand: the controller
# reports a Camera whose node does not exist as NodeNotFound.
"${kubectl[@]}" create -f - >&2 <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $node
  labels:
    camfleet.io/camera-node: "true"
EOF

say "starting the controller"
"$state/bin/camfleet-controller" --kubeconfig "$state/kubeconfig" \
  --metrics-bind-address "127.0.0.1:$metrics_port" --health-probe-bind-address "127.0.0.1:$probe_port" \
  --token-service-bind-address "127.0.0.1:$token_port" --token-service-url "$token_url" --default-token-policy "$ns/home" \
  >"$state/controller.log" 2>&1 &
pids+=($!)
wait_for 60 "the controller's /readyz" curl -fsS "http://127.0.0.1:$probe_port/readyz"
"${kubectl[@]}" wait -n "$ns" tokenpolicy/home --for=condition=Ready --timeout=60s >/dev/null ||
  die "TokenPolicy home did not become Ready (see $state/controller.log)"

say "starting the agent for node $node"
"$state/bin/camfleet-agent" --kubeconfig "$state/kubeconfig" --node-name "$node" \
  --listen-address "127.0.0.1:$agent_port" --advertise-url "$agent_url" --token-service-url "$token_url" \
  --default-token-policy "$ns/home" --state-dir "$state/agent" >"$state/agent.log" 2>&1 &
pids+=($!)
wait_for 60 "the agent's /readyz" curl -fsS "$agent_url/readyz"
"${kubectl[@]}" wait -n "$ns" camera/test-pattern --for=condition=Ready --timeout=60s >/dev/null ||
  die "the test-pattern camera did not become Ready (see $state/agent.log)"
cam=$agent_url/api/cameras/$ns/test-pattern
demo_token=$(curl -fsS -XPOST "$agent_url/api/login" -d '{"user":"alice","pass":"camfleet-demo"}' | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
[[ -n $demo_token ]] || die "the demo login through the agent failed (see $state/agent.log)"

cat <<MSG

camfleet is running locally.
  kubeconfig:   export KUBECONFIG=$state/kubeconfig
  try:          $assets/kubectl get camfleet -n $ns
                $assets/kubectl get configmap home-jwks -n $ns -o yaml   # the published public keys
                $assets/kubectl get cameras -A --field-selector spec.nodeName=pi-1
  metrics:      http://127.0.0.1:$metrics_port/metrics
  health:       http://127.0.0.1:$probe_port/readyz
  logs:         $state/controller.log, $state/agent.log, $state/localcluster.log
  token service: $token_url  (OpenID discovery: $token_url/policies/$ns/home/.well-known/openid-configuration)
  login:        user alice, password camfleet-demo
                curl -s -XPOST $token_url/api/login -d '{"user":"alice","pass":"camfleet-demo"}'

The test-pattern camera (node $node), served by the agent at $agent_url:
  watch it:     open this in a browser (the token in it is valid for 15 minutes):
                $cam/stream.mjpeg?access_token=$demo_token
  log in:       TOKEN=\$(curl -s -XPOST $agent_url/api/login -d '{"user":"alice","pass":"camfleet-demo"}' | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
  snapshot:     curl -H "Authorization: Bearer \$TOKEN" -o snapshot.jpg $cam/snapshot.jpg
  motion:       curl -H "Authorization: Bearer \$TOKEN" $cam/events        (an object crosses every 30 s)
                curl -N -H "Authorization: Bearer \$TOKEN" $cam/events/stream
  acknowledge:  curl -XPOST -H "Authorization: Bearer \$TOKEN" $agent_url/api/ack -d '{"count": 1}'

MSG

if $smoke; then
  out=$("${kubectl[@]}" get camfleet -n "$ns" -o name)
  for want in camera.camfleet.io/backyard camera.camfleet.io/test-pattern tokenpolicy.camfleet.io/home accesstoken.camfleet.io/snapshot-archiver; do
    grep -qx "$want" <<<"$out" || die "smoke: $want is missing from kubectl get camfleet"
  done
  "${kubectl[@]}" wait -n "$ns" tokenpolicy/home --for=condition=Ready --timeout=60s >/dev/null ||
    die "smoke: TokenPolicy home did not become Ready"
  jwks=$("${kubectl[@]}" get -n "$ns" configmap home-jwks -o jsonpath='{.data.jwks\.json}')
  grep -q '"kid"' <<<"$jwks" || die "smoke: the JWKS ConfigMap home-jwks holds no key"
  login=$(curl -fsS -XPOST "$token_url/api/login" -d '{"user":"alice","pass":"camfleet-demo"}') ||
    die "smoke: the demo login failed"
  access=$(sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p' <<<"$login")
  info=$(curl -fsS -H "Authorization: Bearer $access" "$token_url/policies/$ns/home/userinfo") ||
    die "smoke: userinfo refused the demo login's token"
  grep -q '"sub":"alice"' <<<"$info" || die "smoke: userinfo does not name alice"
  metrics=$(curl -fsS "http://127.0.0.1:$metrics_port/metrics") || die "smoke: metrics endpoint did not answer"
  grep -q '^controller_runtime_' <<<"$metrics" || die "smoke: no controller metrics"
  kill -0 "${pids[1]}" || die "smoke: the controller exited (see $state/controller.log)"
  code=$(curl -s -o /dev/null -w '%{http_code}' "$cam/snapshot.jpg")
  [[ $code == 401 ]] || die "smoke: a snapshot without a token answered $code, not 401"
  curl -fsS -H "Authorization: Bearer $demo_token" -o "$state/snapshot.jpg" "$cam/snapshot.jpg" ||
    die "smoke: the agent refused a snapshot to the demo login"
  [[ $(head -c 2 "$state/snapshot.jpg" | od -An -tx1 | tr -d ' ') == ffd8 ]] || die "smoke: the snapshot is not a JPEG"
  ack=$(curl -fsS -XPOST -H "Authorization: Bearer $demo_token" "$agent_url/api/ack" -d '{"count": 1}') ||
    die "smoke: /api/ack refused the demo login"
  [[ $ack == '{"ok": true, "user": "alice"}' ]] || die "smoke: /api/ack answered $ack"
  ctype=$(curl -s -m 2 -o /dev/null -w '%{content_type}' "$cam/stream.mjpeg?access_token=$demo_token" || true)
  [[ $ctype == multipart/x-mixed-replace* ]] || die "smoke: the stream answered $ctype"
  endpoint=$("${kubectl[@]}" get -n "$ns" camera test-pattern -o jsonpath='{.status.endpoint}')
  [[ $endpoint == "$cam/" ]] || die "smoke: the camera's status.endpoint is $endpoint"
  kill -0 "${pids[2]}" || die "smoke: the agent exited (see $state/agent.log)"
  echo "demo smoke test passed"
  exit 0
fi
say "running; press Ctrl-C to stop"
wait "${pids[1]}"
