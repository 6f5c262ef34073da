#!/usr/bin/env bash
# Idempotently make a Docker engine answer on this machine.
# - If `docker info` already answers (any engine, any socket in DOCKER_HOST), do nothing.
# - If DOCKER_HOST names an engine that does not answer, start nothing: a local dockerd
#   would listen elsewhere, not where the operator pointed us. Exit 4 (setup.sh goes on, and
#   the API starts degraded: /readyz answers 503 naming that engine until it answers).
# - Otherwise, as root on Debian: install docker.io if dockerd is missing, then start
#   dockerd in the background with no bridge and no iptables (executor containers run
#   with network "none"; nothing here may route traffic anywhere).
set -euo pipefail

log() { printf '[ensure-docker] %s\n' "$*" >&2; }

if command -v docker >/dev/null 2>&1 && timeout 20 docker info >/dev/null 2>&1; then
  log "engine already answers"
  exit 0
fi

if [ -n "${DOCKER_HOST:-}" ]; then
  log "DOCKER_HOST=${DOCKER_HOST} does not answer; not starting a local dockerd (it would listen elsewhere)"
  exit 4
fi

if ! command -v dockerd >/dev/null 2>&1; then
  if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    log "no Docker engine answers and I can only install one as root on Debian; start one yourself"
    exit 1
  fi
  log "installing docker.io from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker.io >/dev/null
fi

if ! command -v docker >/dev/null 2>&1; then
  log "docker CLI missing after install"; exit 1
fi

log "starting dockerd in the background (log: /var/log/dockerd.log)"
mkdir -p /var/log
# setsid: the engine must outlive the shell (and the test run) that started it.
setsid nohup dockerd --bridge=none --iptables=false --ip6tables=false \
  >/var/log/dockerd.log 2>&1 < /dev/null &

for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    log "engine is up ($(docker info --format '{{.ServerVersion}} / {{.Driver}}'))"
    exit 0
  fi
  sleep 1
done
log "dockerd did not answer within 60 s; last log lines:"
tail -n 30 /var/log/dockerd.log >&2 || true
exit 1
