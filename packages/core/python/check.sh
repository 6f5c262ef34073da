#!/usr/bin/env bash
# Lints (pyflakes) and tests (pytest) the in-executor programs on the host, with Debian's
# python3-pyflakes and python3-pytest (scripts/setup.sh installs them). Writes a JUnit report
# that scripts/test-summary.mjs counts. Run from the package directory (npm test does).
set -euo pipefail
cd "$(dirname "$0")"
for tool in pyflakes3 pytest-3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "[python] $tool is missing: run 'pnpm run setup' (apt-get install python3-pytest python3-pyflakes)" >&2
    exit 1
  fi
done
pyflakes3 .
pytest-3 -q -p no:cacheprovider --junitxml=../.pytest-report.xml tests
