#!/usr/bin/env bash
# One idempotent setup for a fresh Debian machine (as root) or a developer laptop:
#   1. a Docker engine that answers (installs docker.io and starts dockerd if needed)
#   2. the executor image (offline build from Debian packages if it is missing)
#   3. the Debian tools the tests use (one apt step, only for what is missing)
#   4. pnpm, the workspace's dependencies, and a build of every package
#   5. the API image (offline build, cached by a hash of its inputs)
# When DOCKER_HOST names an engine that does not answer, no local dockerd is started and the
# images are skipped: the API still starts (degraded, /readyz 503) — see docs/operations.md.
# Re-running it is cheap: every step checks before it acts.
# SKIP_DOCKER=1 skips steps 1-2 and the API image (e.g. for working on packages that need no engine).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[setup] %s\n' "$*" >&2; }

engine_ok=0
if [ "${SKIP_DOCKER:-0}" != "1" ]; then
  # A named engine that does not answer is not fatal (start degraded): ensure-docker exits 4.
  rc=0
  bash scripts/ensure-docker.sh || rc=$?
  if [ "$rc" = "4" ]; then
    log "continuing without an engine: images are not built; the API will report not ready (/readyz 503) until ${DOCKER_HOST} answers"
  elif [ "$rc" != "0" ]; then
    exit "$rc"
  else
    engine_ok=1
    bash images/executor/build-offline.sh "${EXECUTOR_IMAGE:-code-interpreter-executor:latest}"
  fi
fi

# Debian tools the tests use, each checked by what it provides:
#   python3-pytest, python3-pyflakes  the in-executor programs' tests and lint (packages/core/python)
#   python3-requests                   the Python client (clients/python), tested with Debian's python3
#   kubectl                            `kubectl kustomize` of deploy/ (tests/deploy)
#   docker-compose                     compose.yaml (1.29; tests/deploy)
#   chromium                           the /docs page test (CHROMIUM_PATH overrides the path)
missing=()
command -v pytest-3 >/dev/null 2>&1 || missing+=(python3-pytest)
command -v pyflakes3 >/dev/null 2>&1 || missing+=(python3-pyflakes)
/usr/bin/python3 -c 'import requests' >/dev/null 2>&1 || missing+=(python3-requests)
command -v kubectl >/dev/null 2>&1 || missing+=(kubectl)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
[ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    log "installing ${missing[*]} from Debian"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    log "missing Debian packages for the tests: ${missing[*]} (apt-get install them)"
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

# The API image bundles dist/, so it is built after the packages.
if [ "$engine_ok" = "1" ]; then
  bash images/api/build-offline.sh "${API_IMAGE:-code-interpreter-api:latest}"
fi
log "ready"
