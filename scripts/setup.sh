#!/usr/bin/env bash
# One idempotent setup for a fresh Debian machine (as root) or a developer laptop:
#   1. a Docker engine that answers (installs docker.io and starts dockerd if needed)
#   2. the executor image (offline build from Debian packages if it is missing)
#   3. pnpm, the workspace's dependencies, and a build of every package
#   4. Debian's chromium, for the API's /docs browser test (CHROMIUM_PATH overrides the path)
# Re-running it is cheap: every step checks before it acts.
# SKIP_DOCKER=1 skips steps 1-2 (e.g. for working on packages that need no engine).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[setup] %s\n' "$*" >&2; }

if [ "${SKIP_DOCKER:-0}" != "1" ]; then
  bash scripts/ensure-docker.sh
  bash images/executor/build-offline.sh "${EXECUTOR_IMAGE:-code-interpreter-executor:latest}"
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

if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing chromium (for the /docs browser test)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 ||
      { apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium >/dev/null; }
  else
    log "chromium is missing: install Debian's chromium (or set CHROMIUM_PATH) for the /docs browser test"
  fi
fi
log "ready"
