#!/usr/bin/env bash
# Set everything up (idempotent), then run the service in the foreground on $HOST:$PORT.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
port="${PORT:-8000}"
cat >&2 <<MSG

code-interpreter is starting on port ${port}. Try, from another shell:

  curl -s localhost:${port}/readyz      # 503 names what it waits for (e.g. the Docker engine)
  curl -s localhost:${port}/v1/execute -H 'content-type: application/json' \\
       -d '{"code": "import sys\\nprint(sys.version)\\n6 * 7"}'
  curl -s -X POST localhost:${port}/v1/sessions -H 'content-type: application/json' -d '{}'

Stop it with Ctrl-C (live sessions are kept; they end by their TTL).

MSG
exec node apps/api/dist/main.js
