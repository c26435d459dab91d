#!/usr/bin/env bash
# Two local Docker engines for Backstage Recovery's demo and tests:
#   primary  (the production site)  unix:///run/recovery-docker/primary.sock
#   recovery (the hypervisor host)  unix:///run/recovery-docker/recovery.sock
#
# Usage: scripts/docker-engines.sh start|stop|status [ENGINE...]   (default: both)
#
# Each engine has its own data root, exec root, pid file, containerd namespace, bridge and
# default address pool, so the two never collide. `start` is idempotent: an engine that is
# already up and answering is left alone. Needs root and `dockerd` (Debian: docker.io).
set -euo pipefail

RUN_DIR=${RECOVERY_DOCKER_RUN_DIR:-/run/recovery-docker}
DATA_DIR=${RECOVERY_DOCKER_DATA_DIR:-/var/lib/recovery-docker}
LOG_DIR=${RECOVERY_DOCKER_LOG_DIR:-/var/log/recovery-docker}
WAIT_SECONDS=${RECOVERY_DOCKER_WAIT_SECONDS:-60}

ENGINES=(primary recovery)

# name -> bridge interface, bridge address (gateway/prefix), default address pool
engine_bridge() { case $1 in primary) echo rd-primary0 ;; recovery) echo rd-recovery0 ;; esac; }
engine_bip() { case $1 in primary) echo 10.200.1.1/24 ;; recovery) echo 10.200.2.1/24 ;; esac; }
engine_pool() { case $1 in primary) echo base=10.201.0.0/16,size=24 ;; recovery) echo base=10.202.0.0/16,size=24 ;; esac; }

sock() { echo "$RUN_DIR/$1.sock"; }
pidfile() { echo "$RUN_DIR/$1.pid"; }
logfile() { echo "$LOG_DIR/$1.log"; }

answering() {
  timeout 10 docker -H "unix://$(sock "$1")" info >/dev/null 2>&1
}

running_pid() {
  local pf
  pf=$(pidfile "$1")
  [[ -s $pf ]] || return 1
  local pid
  pid=$(cat "$pf")
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

ensure_bridge() {
  local br=$1 addr=$2
  if ! ip link show "$br" >/dev/null 2>&1; then
    ip link add name "$br" type bridge
  fi
  if ! ip -4 addr show dev "$br" | grep -q "inet ${addr%/*}/"; then
    ip addr add "$addr" dev "$br"
  fi
  ip link set "$br" up
}

start_engine() {
  local name=$1
  if answering "$name"; then
    echo "engine $name: already up at unix://$(sock "$name")"
    return 0
  fi
  if pid=$(running_pid "$name"); then
    echo "engine $name: dockerd pid $pid is running but not answering yet; waiting"
    return 0
  fi
  mkdir -p "$RUN_DIR" "$DATA_DIR/$name" "$LOG_DIR" "$RUN_DIR/$name"
  rm -f "$(sock "$name")" "$(pidfile "$name")"
  ensure_bridge "$(engine_bridge "$name")" "$(engine_bip "$name")"
  # dockerd refuses --bip together with --bridge: the bridge carries its address itself.
  setsid nohup dockerd \
    --host "unix://$(sock "$name")" \
    --data-root "$DATA_DIR/$name" \
    --exec-root "$RUN_DIR/$name" \
    --pidfile "$(pidfile "$name")" \
    --bridge "$(engine_bridge "$name")" \
    --default-address-pool "$(engine_pool "$name")" \
    --containerd-namespace "recovery-$name" \
    --containerd-plugins-namespace "recovery-$name-plugins" \
    --log-level warn \
    >>"$(logfile "$name")" 2>&1 </dev/null &
  echo "engine $name: starting dockerd (log: $(logfile "$name"))"
}

wait_engine() {
  local name=$1 i
  for ((i = 0; i < WAIT_SECONDS * 2; i++)); do
    if answering "$name"; then
      echo "engine $name: up at unix://$(sock "$name")"
      return 0
    fi
    if ((i > 4)) && ! running_pid "$name" >/dev/null && ! pgrep -f -- "--pidfile $(pidfile "$name")" >/dev/null; then
      echo "engine $name: dockerd exited; last log lines:" >&2
      tail -n 20 "$(logfile "$name")" >&2 || true
      return 1
    fi
    sleep 0.5
  done
  echo "engine $name: did not answer within ${WAIT_SECONDS}s; last log lines:" >&2
  tail -n 20 "$(logfile "$name")" >&2 || true
  return 1
}

stop_engine() {
  local name=$1 pid i
  if ! pid=$(running_pid "$name"); then
    echo "engine $name: not running"
    return 0
  fi
  kill "$pid"
  for ((i = 0; i < 60; i++)); do
    kill -0 "$pid" 2>/dev/null || { echo "engine $name: stopped"; return 0; }
    sleep 0.5
  done
  echo "engine $name: dockerd pid $pid did not stop in 30s; sending KILL" >&2
  kill -9 "$pid" 2>/dev/null || true
}

status_engine() {
  local name=$1
  if answering "$name"; then
    local v
    v=$(docker -H "unix://$(sock "$name")" version --format '{{.Server.Version}}' 2>/dev/null || echo '?')
    echo "engine $name: up at unix://$(sock "$name") (dockerd $v, pid $(running_pid "$name" || echo '?'), log $(logfile "$name"))"
    return 0
  fi
  echo "engine $name: down (log $(logfile "$name"))"
  return 1
}

cmd=${1:-}
shift || true
if (($# > 0)); then
  for e in "$@"; do
    [[ $e == primary || $e == recovery ]] || { echo "unknown engine '$e' (primary or recovery)" >&2; exit 2; }
  done
  ENGINES=("$@")
fi
case $cmd in
  start)
    if [[ $(id -u) != 0 ]]; then echo "must run as root" >&2; exit 1; fi
    command -v dockerd >/dev/null || { echo "dockerd not found (apt-get install -y docker.io)" >&2; exit 1; }
    # One after the other: two dockerds setting up their iptables chains at the same
    # instant race each other (DOCKER-ISOLATION-STAGE-1 "No chain/target/match").
    rc=0
    for e in "${ENGINES[@]}"; do start_engine "$e" && wait_engine "$e" || rc=1; done
    echo "logs: $LOG_DIR/{primary,recovery}.log"
    echo "export RECOVERY_PRIMARY_DOCKER_HOST=unix://$(sock primary)"
    echo "export RECOVERY_HOST_DOCKER_HOST=unix://$(sock recovery)"
    exit $rc
    ;;
  stop)
    for e in "${ENGINES[@]}"; do stop_engine "$e"; done
    ;;
  status)
    rc=0
    for e in "${ENGINES[@]}"; do status_engine "$e" || rc=1; done
    exit $rc
    ;;
  *)
    echo "usage: $0 start|stop|status [primary|recovery...]" >&2
    exit 2
    ;;
esac
