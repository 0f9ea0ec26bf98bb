#!/usr/bin/env bash
# Builds the operator image from the Dockerfile: with Docker when it is installed, otherwise with buildah (vfs
# storage, chroot isolation: no daemon, no registry needed).
#
#   hack/image.sh [--tag IMAGE] [--archive FILE]     (make image)
#
# BASE_IMAGE overrides the Dockerfile's base (official python:3.11 slim). With buildah and no BASE_IMAGE the base is
# made locally (mmdebstrap of Debian bookworm with Python 3.11, hack/base-image.sh), since a machine without Docker
# may have no registry either; BASE_IMAGE=python:3.11.14-slim-bookworm pulls the official one instead.
# --archive also writes the image as an OCI archive (what the test node imports with `ctr images import`).
# The buildah build is cached by the hash of its inputs: an unchanged tree is not built twice.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE="localhost/coco-operator:dev"
ARCHIVE=""
while (($#)); do
  case "$1" in
    --tag) IMAGE="$2"; shift 2 ;;
    --archive) ARCHIVE="$2"; shift 2 ;;
    *) echo "usage: $0 [--tag IMAGE] [--archive FILE]" >&2; exit 2 ;;
  esac
done
log() { echo "[image] $*" >&2; }

if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  log "building $IMAGE with docker"
  docker build ${BASE_IMAGE:+--build-arg "BASE_IMAGE=$BASE_IMAGE"} -t "$IMAGE" .
  if [[ -n "$ARCHIVE" ]]; then docker save -o "$ARCHIVE" "$IMAGE"; fi
  exit 0
fi

if ! command -v buildah >/dev/null; then
  echo "error: neither docker nor buildah is installed; install one (Debian: apt-get install buildah mmdebstrap)" >&2
  exit 1
fi
# shellcheck source=hack/buildah-env.sh
source hack/buildah-env.sh
if [[ -z "${BASE_IMAGE:-}" ]]; then
  BASE_IMAGE="$(bash hack/base-image.sh)"
fi

# The inputs of the build: the Dockerfile, the files .dockerignore lets in, and the base image's id.
inputs_hash() {
  {
    sha256sum Dockerfile .dockerignore pyproject.toml README.md
    find operator -type f ! -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum
    buildah inspect --type image --format '{{.FromImageID}}' "$BASE_IMAGE" 2>/dev/null || echo "$BASE_IMAGE"
  } | sha256sum | cut -c1-16
}
hash="$(inputs_hash)"
built="localhost/coco-operator-build:$hash"
if buildah inspect --type image "$built" >/dev/null 2>&1; then
  log "$IMAGE: inputs unchanged since the last build ($hash)"
else
  log "building $IMAGE with buildah from $BASE_IMAGE"
  # vfs keeps every layer as a full copy: drop earlier builds (and the build stage) before making another.
  for old in $(buildah images --format '{{.Name}}:{{.Tag}}' --filter 'reference=localhost/coco-operator-build'); do
    buildah rmi -f "$old" >/dev/null
  done
  # pip in RUN steps trusts what the host trusts and uses the host's pip settings (an index mirror, a TLS-inspecting
  # proxy's CA): both are bind-mounted read-only for the build only, nothing of them ends up in the image.
  mounts=()
  for f in /etc/ssl/certs/ca-certificates.crt /etc/pip.conf; do
    if [[ -f "$f" ]]; then mounts+=(--volume "$f:$f:ro"); fi
  done
  buildah build --isolation chroot "${mounts[@]}" --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$built" . >&2
  buildah rmi --prune >/dev/null 2>&1 || true
fi
buildah tag "$built" "$IMAGE"
if [[ -n "$ARCHIVE" ]]; then
  rm -f "$ARCHIVE"
  buildah push -q "$IMAGE" "oci-archive:$ARCHIVE:$IMAGE" >&2
fi
echo "$IMAGE"
