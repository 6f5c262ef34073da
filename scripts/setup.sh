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

if [ "${SKIP_DOCKER:-0}" != "1" ]; then
  bash scripts/ensure-docker.sh
  bash images/executor/build-offline.sh "${EXECUTOR_IMAGE:-code-interpreter-executor:latest}"
fi

# The Python client's tests (clients/python, run by packages/client's suite) use Debian's
# python3 with python3-requests and python3-pytest.
if ! /usr/bin/python3 -c 'import requests, pytest' 2>/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    log "installing python3, python3-requests, python3-pytest"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-requests python3-pytest >/dev/null
  else
    log "warning: the Python client's tests need /usr/bin/python3 with requests and pytest (Debian: python3-requests python3-pytest)"
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
