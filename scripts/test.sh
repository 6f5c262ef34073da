#!/usr/bin/env bash
# Every check and every test, as CI runs them (after scripts/setup.sh):
# formatting, the source-size rule (scripts/check-source-size.mjs: no source file over 350
# lines), README examples that are their run files (scripts/check-readme-examples.mjs), lint,
# typecheck, build, then each package's vitest suite (real Docker engine included). Ends with one summary line "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."

status=0
pnpm exec prettier --check . --log-level warn || { echo "[test] formatting differs: run 'pnpm format'" >&2; status=1; }
node scripts/check-source-size.mjs || status=1
node scripts/check-readme-examples.mjs || status=1
pnpm exec turbo run lint typecheck build --output-logs=errors-only --concurrency=2 || status=1

find packages apps tests -maxdepth 2 \( -name .vitest-report.json -o -name .pytest-report.xml \) -delete 2>/dev/null || true
# Packages one at a time: the Docker-backed suites share one engine and two cores.
pnpm exec turbo run test --concurrency=1 --continue -- --reporter=default --reporter=json --outputFile.json=.vitest-report.json || status=1

node scripts/test-summary.mjs || status=1
exit $status
