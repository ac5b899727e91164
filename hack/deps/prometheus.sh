#!/usr/bin/env bash
# Installs Prometheus for the e2e tests, the demo and the benchmark: Debian's `prometheus`
# package (2.42 on bookworm). Idempotent: does nothing when `prometheus` is already on PATH.
# The package's service is not started (no systemd here); the harness runs its own instance on
# 127.0.0.1 (test/e2e/harness/prometheus.ts).
set -euo pipefail
if command -v prometheus >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "hack/deps/prometheus.sh: prometheus is not installed and apt-get is not available; install Prometheus >= 2.x and put it on PATH" >&2
  exit 1
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "hack/deps/prometheus.sh: installing Debian's prometheus package" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
# Debian's postinst may start a daemon on 0.0.0.0:9090 where an init system runs; stop it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
command -v prometheus >/dev/null 2>&1 || { echo "hack/deps/prometheus.sh: install finished but prometheus is not on PATH" >&2; exit 1; }
prometheus --version 2>&1 | head -n1 >&2
