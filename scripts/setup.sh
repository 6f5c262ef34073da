#!/usr/bin/env bash
# One idempotent setup for a fresh Debian machine (as root) or a developer laptop:
#   1. a Docker engine that answers (installs docker.io and starts dockerd if needed)
#   2. the executor image (offline build from Debian packages if it is missing)
#   3. pnpm, the workspace's dependencies, and a build of every package
#   4. kubectl and docker-compose (Debian's), and the API image (offline build, cached)
# When DOCKER_HOST names an engine that does not answer, no local dockerd is started and the
# images are skipped: the API still starts (degraded, /readyz 503) — see docs/operations.md.
#   5. Debian's chromium, for the API's /docs browser test (CHROMIUM_PATH overrides the path)
# Re-running it is cheap: every step checks before it acts.
# SKIP_DOCKER=1 skips steps 1-2 and the API image (e.g. for working on packages that need no engine).
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

# --- deploy: tools the deploy tests use, and the API image (after the build: it bundles dist/) ---
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  missing=()
  command -v kubectl >/dev/null 2>&1 || missing+=(kubectl)               # kubectl kustomize
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose) # compose.yaml (1.29)
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]} from Debian"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi
if [ "$engine_ok" = "1" ]; then
  bash images/api/build-offline.sh "${API_IMAGE:-code-interpreter-api:latest}"
fi
# --- end deploy ---
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
