#!/usr/bin/env bash
# Start a local Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler and kwok (fake nodes, pods become Ready), plus the
# Istio DestinationRule/VirtualService CRDs. Builds what is missing first (hack/cluster/build.sh).
#
# State (PKI, etcd data, logs/, pids/, env, kubeconfig) lives in <repo>/.cluster/.
# Ports are picked free at start-up and recorded in .cluster/env. Idempotent: when the cluster
# recorded there is up and healthy this prints its kubeconfig and exits.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
NODES="${KUBE_CANARY_NODES:-2}"
START_TIMEOUT="${KUBE_CANARY_START_TIMEOUT:-180}"

kctl() { "$KUBECTL_BIN" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

all_alive() {
  local c
  for c in "${COMPONENTS[@]}"; do pid_alive "$STATE_DIR/pids/$c.pid" || return 1; done
}

if [[ -f "$STATE_DIR/env" ]]; then
  if all_alive && kctl get --raw /readyz >/dev/null 2>&1; then
    log "up: cluster already running (state in $STATE_DIR)"
    echo "$KUBECONFIG_PATH"
    exit 0
  fi
  log "up: found a stale or partial cluster in $STATE_DIR; stopping it first"
  "$(dirname "$0")/down.sh"
fi

"$(dirname "$0")/build.sh"
start=$SECONDS

# On any failure from here on: stop what was started, keep the logs for a post-mortem.
on_exit() {
  local rc=$?
  if ((rc != 0)); then
    log "up: FAILED; stopping the components started so far (logs kept in $STATE_DIR/logs/)"
    "$(dirname "$0")/down.sh" --keep-logs || true
  fi
}
trap on_exit EXIT

mkdir -p "$STATE_DIR"/{pki,logs,pids,etcd,config}
chmod 700 "$STATE_DIR/pki"

# ---------------------------------------------------------------------------------- ports
port_in_use() { ss -Htln "sport = :$1" 2>/dev/null | grep -q . ; }
declare -A taken=()
pick_port() {
  local p i
  for i in $(seq 200); do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 30000 ))
    [[ -n "${taken[$p]:-}" ]] && continue
    port_in_use "$p" && continue
    taken[$p]=1
    echo "$p"
    return 0
  done
  die "no free port found"
}
ETCD_CLIENT_PORT=$(pick_port); taken[$ETCD_CLIENT_PORT]=1
ETCD_PEER_PORT=$(pick_port); taken[$ETCD_PEER_PORT]=1
APISERVER_PORT=$(pick_port); taken[$APISERVER_PORT]=1
CONTROLLER_MANAGER_PORT=$(pick_port); taken[$CONTROLLER_MANAGER_PORT]=1
SCHEDULER_PORT=$(pick_port); taken[$SCHEDULER_PORT]=1
SERVICE_CIDR="10.96.0.0/16"
APISERVER_URL="https://127.0.0.1:$APISERVER_PORT"

cat >"$STATE_DIR/env" <<ENV
# written by hack/cluster/up.sh; sourced by down.sh and read by test/e2e/harness
KUBE_CANARY_CLUSTER_DIR=$STATE_DIR
KUBECONFIG=$KUBECONFIG_PATH
APISERVER_URL=$APISERVER_URL
APISERVER_PORT=$APISERVER_PORT
ETCD_CLIENT_PORT=$ETCD_CLIENT_PORT
ETCD_PEER_PORT=$ETCD_PEER_PORT
CONTROLLER_MANAGER_PORT=$CONTROLLER_MANAGER_PORT
SCHEDULER_PORT=$SCHEDULER_PORT
SERVICE_CIDR=$SERVICE_CIDR
KUBE_VERSION=$KUBE_VERSION
ETCD_VERSION=$ETCD_VERSION
KWOK_VERSION=$KWOK_VERSION
KUBECTL=$KUBECTL_BIN
HELM=$HELM_BIN
ISTIO_CRDS=$ISTIO_CRDS
ENV

# ------------------------------------------------------------------------------------ PKI
pki="$STATE_DIR/pki"
openssl_q() { openssl "$@" 2>/dev/null; }
new_key() { openssl_q genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; chmod 600 "$1"; }
# sign <name> <subject> <extensions>
sign() {
  local name="$1" subj="$2" ext="$3"
  new_key "$pki/$name.key"
  openssl_q req -new -key "$pki/$name.key" -subj "$subj" -out "$pki/$name.csr"
  printf '%b\n' "$ext" >"$pki/$name.ext"
  openssl_q x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 30 -sha256 -extfile "$pki/$name.ext" -out "$pki/$name.crt"
  rm -f "$pki/$name.csr" "$pki/$name.ext"
}
log "up: generating PKI"
new_key "$pki/ca.key"
openssl_q req -x509 -new -key "$pki/ca.key" -subj "/CN=kube-canary-local-ca" -days 30 -sha256 \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
  -out "$pki/ca.crt"
client_ext='basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth'
sign apiserver "/CN=kube-apiserver" \
  "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
sign admin "/O=system:masters/CN=kube-canary-admin" "$client_ext"
sign controller-manager "/CN=system:kube-controller-manager" "$client_ext"
sign scheduler "/CN=system:kube-scheduler" "$client_ext"
sign kwok "/O=system:masters/CN=kwok" "$client_ext"
# Service-account token signing key (RSA, as every client expects RS256).
openssl_q genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pki/sa.key"
chmod 600 "$pki/sa.key"
openssl_q pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub"

write_kubeconfig() { # <file> <user cert/key name>
  local ca crt key
  ca="$(base64 -w0 <"$pki/ca.crt")"; crt="$(base64 -w0 <"$pki/$2.crt")"; key="$(base64 -w0 <"$pki/$2.key")"
  cat >"$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: kube-canary-local
  cluster:
    server: $APISERVER_URL
    certificate-authority-data: $ca
users:
- name: $2
  user:
    client-certificate-data: $crt
    client-key-data: $key
contexts:
- name: kube-canary-local
  context:
    cluster: kube-canary-local
    user: $2
current-context: kube-canary-local
KC
  chmod 600 "$1"
}
write_kubeconfig "$KUBECONFIG_PATH" admin
write_kubeconfig "$STATE_DIR/config/controller-manager.kubeconfig" controller-manager
write_kubeconfig "$STATE_DIR/config/scheduler.kubeconfig" scheduler
write_kubeconfig "$STATE_DIR/config/kwok.kubeconfig" kwok

# ------------------------------------------------------------------------------ processes
# start <name> <binary> <args...>: detached (own session), stdin closed, output to logs/<name>.log;
# records "pid starttime" in pids/<name>.pid for down.sh.
start_component() {
  local name="$1"; shift
  setsid "$@" </dev/null >>"$STATE_DIR/logs/$name.log" 2>&1 &
  local pid=$!
  local st=""
  for _ in 1 2 3 4 5 6 7 8 9 10; do st="$(proc_starttime "$pid")"; [[ -n "$st" ]] && break; sleep 0.05; done
  echo "$pid $st" >"$STATE_DIR/pids/$name.pid"
  log "up: started $name (pid $pid, log $STATE_DIR/logs/$name.log)"
}

wait_for() { # <description> <timeout s> <command...>
  local what="$1" timeout="$2"; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "up: timed out after ${timeout}s waiting for $what; last log lines:"
      local f; for f in "$STATE_DIR"/logs/*.log; do echo "== $f"; tail -n 15 "$f"; done >&2
      die "timed out waiting for $what (logs in $STATE_DIR/logs/)"
    fi
    local c; for c in "${started[@]}"; do
      pid_alive "$STATE_DIR/pids/$c.pid" || { tail -n 40 "$STATE_DIR/logs/$c.log" >&2; die "$c exited (log $STATE_DIR/logs/$c.log)"; }
    done
    sleep 0.5
  done
}
started=()

start_component etcd "$ETCD_BIN" \
  --name=kube-canary \
  --data-dir="$STATE_DIR/etcd" \
  --listen-client-urls="http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --advertise-client-urls="http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster="kube-canary=http://127.0.0.1:$ETCD_PEER_PORT" \
  --unsafe-no-fsync \
  --quota-backend-bytes=$((2 * 1024 * 1024 * 1024)) \
  --log-level=warn
started+=(etcd)
wait_for "etcd" 60 curl -fsS "http://127.0.0.1:$ETCD_CLIENT_PORT/health"

start_component kube-apiserver "$KUBE_DIR/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --bind-address=127.0.0.1 \
  --advertise-address=127.0.0.1 \
  --secure-port="$APISERVER_PORT" \
  --endpoint-reconciler-type=none \
  --tls-cert-file="$pki/apiserver.crt" \
  --tls-private-key-file="$pki/apiserver.key" \
  --client-ca-file="$pki/ca.crt" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$pki/sa.pub" \
  --service-account-signing-key-file="$pki/sa.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --authorization-mode=Node,RBAC \
  --allow-privileged=true \
  --cert-dir="$STATE_DIR/pki/apiserver-generated" \
  --profiling=false \
  --v=1
started+=(kube-apiserver)
wait_for "kube-apiserver /readyz" "$START_TIMEOUT" kctl get --raw /readyz

# --kube-api-qps/burst: the defaults (20/30) let the controller-manager fall minutes behind when
# the benchmark rolls out 500 Deployments at once, and every e2e test sharing the cluster waits.
start_component kube-controller-manager "$KUBE_DIR/kube-controller-manager" \
  --kubeconfig="$STATE_DIR/config/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$STATE_DIR/config/controller-manager.kubeconfig" \
  --authorization-kubeconfig="$STATE_DIR/config/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 \
  --secure-port="$CONTROLLER_MANAGER_PORT" \
  --cert-dir="$STATE_DIR/pki/controller-manager-generated" \
  --leader-elect=false \
  --root-ca-file="$pki/ca.crt" \
  --service-account-private-key-file="$pki/sa.key" \
  --use-service-account-credentials=true \
  --cluster-signing-cert-file="$pki/ca.crt" \
  --cluster-signing-key-file="$pki/ca.key" \
  --kube-api-qps=200 \
  --kube-api-burst=400 \
  --profiling=false \
  --v=1
started+=(kube-controller-manager)

start_component kube-scheduler "$KUBE_DIR/kube-scheduler" \
  --kubeconfig="$STATE_DIR/config/scheduler.kubeconfig" \
  --authentication-kubeconfig="$STATE_DIR/config/scheduler.kubeconfig" \
  --authorization-kubeconfig="$STATE_DIR/config/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 \
  --secure-port="$SCHEDULER_PORT" \
  --cert-dir="$STATE_DIR/pki/scheduler-generated" \
  --leader-elect=false \
  --kube-api-qps=200 \
  --kube-api-burst=400 \
  --profiling=false \
  --v=1
started+=(kube-scheduler)

# kwok: no --node-port / --server-address, so it opens no listener at all.
# --node-lease-duration-seconds: with --config holding only Stages the configuration is not
# defaulted and kwok keeps no node Leases; the heartbeat-with-lease stage then updates the
# Node status only every 10-20 min and the node lifecycle controller marks the nodes (and
# every pod on them) NotReady after its 50 s grace period.
start_component kwok "$KWOK_BIN" \
  --kubeconfig="$STATE_DIR/config/kwok.kubeconfig" \
  --node-lease-duration-seconds=40 \
  --config="$KWOK_STAGES" \
  --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
  --cidr=10.244.0.0/16 \
  --node-ip=127.0.0.1
started+=(kwok)

# ------------------------------------------------------------------------- cluster objects
nodes_yaml() {
  local i
  for ((i = 0; i < NODES; i++)); do
    cat <<NODE
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    type: kwok
    kubernetes.io/arch: amd64
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/role: agent
    node-role.kubernetes.io/agent: ""
status:
  allocatable: {cpu: "1000", memory: 4Ti, pods: "5000", ephemeral-storage: 10Ti}
  capacity: {cpu: "1000", memory: 4Ti, pods: "5000", ephemeral-storage: 10Ti}
  nodeInfo:
    architecture: amd64
    kubeletVersion: fake
    kubeProxyVersion: fake
    operatingSystem: linux
NODE
  done
}
log "up: creating $NODES kwok node(s) and the Istio CRDs"
nodes_yaml | kctl apply -f - >/dev/null
kctl apply --server-side --force-conflicts -f "$ISTIO_CRDS" >/dev/null

nodes_ready() {
  local ready
  ready="$(kctl get nodes -l type=kwok -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c '^True$')"
  ((ready >= NODES))
}
wait_for "$NODES kwok node(s) Ready" 120 nodes_ready
wait_for "ServiceAccount default/default" 120 kctl -n default get serviceaccount default
wait_for "Istio CRDs Established" 60 kctl wait --for condition=Established --timeout=5s \
  crd/destinationrules.networking.istio.io crd/virtualservices.networking.istio.io

log "up: cluster ready in $((SECONDS - start))s: kube-apiserver $APISERVER_URL ($KUBE_VERSION), etcd $ETCD_VERSION, kwok $KWOK_VERSION"
log "up: export KUBECONFIG=$KUBECONFIG_PATH   (kubectl: $KUBECTL_BIN)"
echo "$KUBECONFIG_PATH"
