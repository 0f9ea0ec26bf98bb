#!/usr/bin/env bash
# Makes the image base where no registry can be reached: Debian bookworm (minbase) with its Python 3.11, made with
# mmdebstrap from the host's own Debian sources and committed with buildah as localhost/coco-python-base.
# Cached: the image is made once per package list. Prints the image name.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=hack/buildah-env.sh
source hack/buildah-env.sh
log() { echo "[base-image] $*" >&2; }

# python-is-python3: the Dockerfile calls `python`, as in the official image; python3-venv: ensurepip for the venv.
PACKAGES="python3,python3-venv,python-is-python3,ca-certificates"
TAG="$(echo "bookworm $PACKAGES" | sha256sum | cut -c1-12)"
IMAGE="localhost/coco-python-base:3.11-bookworm-$TAG"
if buildah inspect --type image "$IMAGE" >/dev/null 2>&1; then
  echo "$IMAGE"
  exit 0
fi

# The host's Debian sources (deb822 or one-line), so that the base comes from wherever this machine's apt does.
SOURCES=""
for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
  if [[ -s "$f" ]] && grep -qE '^(deb |Types:)' "$f"; then SOURCES="$f"; break; fi
done
if [[ -z "$SOURCES" ]]; then
  echo "error: no Debian apt sources found in /etc/apt (needed to make the base image)" >&2
  exit 1
fi
command -v mmdebstrap >/dev/null || { echo "error: mmdebstrap missing (apt-get install mmdebstrap)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log "making $IMAGE with mmdebstrap (Debian bookworm, $PACKAGES)"
mmdebstrap --quiet --variant=minbase --include="$PACKAGES" \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
  bookworm "$work/rootfs.tar" "$SOURCES" >&2
ctr="$(buildah from scratch)"
buildah add "$ctr" "$work/rootfs.tar" / >/dev/null
buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8 \
  --cmd python3 --label org.opencontainers.image.description="Debian bookworm with Python 3.11 (mmdebstrap)" "$ctr"
buildah commit --rm -q "$ctr" "$IMAGE" >/dev/null
echo "$IMAGE"
