#!/usr/bin/env bash
# One idempotent setup for a fresh Debian machine (as root) or a developer laptop:
#   1. a Docker engine that answers (installs docker.io and starts dockerd if needed)
#   2. the executor image (offline build from Debian packages if it is missing)
#   3. pnpm, the workspace's dependencies, and a build of every package
# Re-running it is cheap: every step checks before it acts.
# SKIP_DOCKER=1 skips steps 1-2 (e.g. for working on packages that need no engine).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[setup] %s\n' "$*" >&2; }

engine_ok=0
if [ "${SKIP_DOCKER:-0}" != "1" ]; then
  # --- deploy: a named engine that does not answer is not fatal (start degraded) ---
  rc=0
  bash scripts/ensure-docker.sh || rc=$?
  if [ "$rc" = "4" ]; then
    log "continuing without an engine: images are not built; the API will report not ready (/readyz 503) until ${DOCKER_HOST} answers"
  elif [ "$rc" != "0" ]; then
    exit "$rc"
  else
    engine_ok=1
  fi
  # --- end deploy ---
  if [ "$engine_ok" = "1" ]; then
    bash images/executor/build-offline.sh "${EXECUTOR_IMAGE:-code-interpreter-executor:latest}"
  fi
fi

want_pnpm="$(node -p 'require("./package.json").packageManager.split("@")[1]')"
if [ "$(pnpm --version 2>/dev/null || true)" != "$want_pnpm" ]; then
  log "installing pnpm $want_pnpm"
  npm install -g "pnpm@$want_pnpm" --no-fund --no-audit --loglevel=error >/dev/null
fi

log "installing dependencies"
if [ -f pnpm-lock.yaml ]; then
  pnpm install --frozen-lockfile --reporter=append-only >/dev/null
else
  pnpm install --reporter=append-only >/dev/null
fi
log "building packages"
pnpm exec turbo run build --output-logs=errors-only >/dev/null
log "ready"
