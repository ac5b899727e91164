#!/usr/bin/env bash
# Stop every process recorded in <repo>/.cluster/pids/ (control plane components, and anything
# the e2e harness registered there), wait for them to exit, then remove the state directory.
# Only the recorded pids are signalled, and only if their start time still matches.
#
# Usage: down.sh [--keep-logs]   (--keep-logs: leave .cluster/logs/ for a post-mortem)
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

if [[ ! -d "$STATE_DIR" ]]; then
  log "down: nothing to do ($STATE_DIR does not exist)"
  exit 0
fi

# Harness-started processes first, then the control plane from the top down.
order=()
shopt -s nullglob
for f in "$STATE_DIR"/pids/*.pid; do
  case "$(basename "$f" .pid)" in
    kwok | kube-scheduler | kube-controller-manager | kube-apiserver | etcd) ;;
    *) order+=("$f") ;;
  esac
done
for c in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
  [[ -f "$STATE_DIR/pids/$c.pid" ]] && order+=("$STATE_DIR/pids/$c.pid")
done

stop_one() { # <pidfile>
  local f="$1" name pid start
  name="$(basename "$f" .pid)"
  if ! pid_alive "$f"; then rm -f "$f"; return 0; fi
  read -r pid start <"$f"
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for i in $(seq 100); do          # up to 20 s
    pid_alive "$f" || break
    sleep 0.2
  done
  if pid_alive "$f"; then
    log "down: $name (pid $pid) did not exit after SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for i in $(seq 50); do pid_alive "$f" || break; sleep 0.1; done
  fi
  pid_alive "$f" && die "down: $name (pid $pid) is still running"
  log "down: stopped $name (pid $pid)"
  rm -f "$f"
}
for f in "${order[@]}"; do stop_one "$f"; done

if [[ "${1:-}" == --keep-logs ]]; then
  find "$STATE_DIR" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf {} +
  log "down: removed $STATE_DIR (kept $STATE_DIR/logs)"
else
  rm -rf "$STATE_DIR"
  log "down: removed $STATE_DIR"
fi
