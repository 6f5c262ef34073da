#!/usr/bin/env bash
# Build the API image without any container registry: a Debian bookworm root file system
# from Debian's own packages (mmdebstrap, variant essential + ca-certificates + libstdc++6),
# this machine's Node (>= 20.19: Debian's own nodejs is 18, too old) and a
# `pnpm deploy --prod` bundle of @code-interpreter/api-image (the API with both backends),
# turned into an image by `docker build` FROM scratch (Dockerfile.offline). Equivalent to
# ./Dockerfile for what a deployment relies on: uid 65532, /app, /data/files, HEALTHCHECK.
#
# Needs the workspace built (scripts/setup.sh does that first). Idempotent and cached: does
# nothing when the image exists and was built from the same recipe, Node binary, lockfile
# and built packages (their hash is the image's org.code-interpreter.recipe label).
# Usage: build-offline.sh [image-tag]   (default: $API_IMAGE or code-interpreter-api:latest)
set -euo pipefail

IMAGE="${1:-${API_IMAGE:-code-interpreter-api:latest}}"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
log() { printf '[api-image] %s\n' "$*" >&2; }

node_bin="$(command -v node)"
node_major="$(node -p 'process.versions.node.split(".").map(Number).slice(0,2).join(".")')"
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)'; then
  log "node $(node --version) is too old for the image (need >= 20.19)"; exit 1
fi
for d in apps/api packages/core packages/backend-docker packages/backend-k8s packages/files-client; do
  [ -f "$root/$d/dist/index.js" ] || { log "$d is not built: run scripts/setup.sh (or pnpm exec turbo run build) first"; exit 1; }
done

# Everything that ends up in the image: this recipe, the Node binary, the lockfile, the
# manifests and the built output of every bundled workspace package.
RECIPE="$(
  cd "$root"
  {
    sha256sum "$here/build-offline.sh" "$here/Dockerfile.offline" "$node_bin" pnpm-lock.yaml images/api/package.json
    find apps/api packages/core packages/backend-docker packages/backend-k8s packages/files-client \
      -path '*/node_modules' -prune -o \( -path '*/dist/*' -o -name package.json -o -name README.md -o -name LICENSE \) -type f -print \
      | LC_ALL=C sort | xargs sha256sum
  } | sha256sum | cut -c1-16
)"

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

log "bundling @code-interpreter/api-image (pnpm deploy --prod from the local store)"
(cd "$root" && pnpm --filter=@code-interpreter/api-image deploy --prod --legacy --prefer-offline \
  --config.auto-install-peers=false --config.resolve-peers-from-workspace-root=false \
  --reporter=append-only "$work/app" >/dev/null)
rm -rf "$work/app/package.json" "$work/app/node_modules/.pnpm/lock.yaml" 2>/dev/null || true

log "building root file system (bookworm, essential + ca-certificates + libstdc++6, node ${node_major})"
mmdebstrap --quiet --variant=essential --include=ca-certificates,libstdc++6 \
  --customize-hook="install -m 0755 '$node_bin' \"\$1/usr/local/bin/node\"" \
  --customize-hook="cp -a '$work/app' \"\$1/app\"" \
  --customize-hook='chown -R 0:0 "$1/app"' \
  --customize-hook='echo "api:x:65532:65532:code-interpreter-api:/app:/usr/sbin/nologin" >> "$1/etc/passwd"' \
  --customize-hook='echo "api:x:65532:" >> "$1/etc/group"' \
  --customize-hook='mkdir -p "$1/data/files" && chown 65532:65532 "$1/data/files"' \
  --customize-hook='rm -rf "$1/var/cache/apt/"* "$1/var/lib/apt/lists/"* "$1/usr/share/doc/"* "$1/usr/share/man/"*' \
  bookworm "$work/rootfs.tar"

log "building $IMAGE"
cp "$here/Dockerfile.offline" "$work/Dockerfile"
DOCKER_BUILDKIT=0 docker build --quiet --label "org.code-interpreter.recipe=$RECIPE" \
  -t "$IMAGE" -f "$work/Dockerfile" "$work" >/dev/null 2>"$work/build.log" || { cat "$work/build.log" >&2; exit 1; }
log "built $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE") bytes, recipe $RECIPE)"
