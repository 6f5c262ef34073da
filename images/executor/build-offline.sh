#!/usr/bin/env bash
# Build the executor image without any container registry: a Debian bookworm root
# file system from Debian's own packages (mmdebstrap) turned into an image with
# `docker import`. Equivalent to ./Dockerfile for what the service relies on:
# python3, tar, coreutils, uid/gid 65532, /workspace, /run/code-interpreter.
#
# Idempotent: does nothing when the image exists and was built from this recipe.
# Usage: build-offline.sh [image-tag]   (default: $EXECUTOR_IMAGE or code-interpreter-executor:latest)
set -euo pipefail

IMAGE="${1:-${EXECUTOR_IMAGE:-code-interpreter-executor:latest}}"
here="$(cd "$(dirname "$0")" && pwd)"
RECIPE="$(sha256sum "$0" | cut -c1-16)"
log() { printf '[executor-image] %s\n' "$*" >&2; }

if [ "$(docker image inspect -f '{{ index .Config.Labels "org.code-interpreter.recipe" }}' "$IMAGE" 2>/dev/null || true)" = "$RECIPE" ]; then
  log "$IMAGE is up to date (recipe $RECIPE)"
  exit 0
fi

if ! command -v mmdebstrap >/dev/null 2>&1; then
  log "installing mmdebstrap from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log "building root file system (bookworm, essential + python3)"
mmdebstrap --quiet --variant=essential --include=python3,ca-certificates \
  --customize-hook='echo "executor:x:65532:65532:executor:/workspace:/bin/sh" >> "$1/etc/passwd"' \
  --customize-hook='echo "executor:x:65532:" >> "$1/etc/group"' \
  --customize-hook='mkdir -p "$1/workspace" "$1/run/code-interpreter" && chown 65532:65532 "$1/workspace"' \
  --customize-hook='rm -rf "$1/var/cache/apt/"* "$1/var/lib/apt/lists/"*' \
  bookworm "$work/rootfs.tar"

log "importing as $IMAGE"
docker import \
  --change 'USER 65532:65532' \
  --change 'WORKDIR /workspace' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/workspace' \
  --change 'CMD ["python3"]' \
  --change "LABEL org.code-interpreter.recipe=$RECIPE" \
  "$work/rootfs.tar" "$IMAGE" >/dev/null
log "built $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE") bytes)"
