# Sourced by the image scripts: buildah without a daemon or privileges beyond root's, its store outside the
# repository (next to the cached binaries), vfs storage (no overlay mounts needed) and chroot isolation for RUN.
COCO_CACHE="${COCO_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/coco-operator}"
COCO_IMAGE_CACHE="$COCO_CACHE/images"
mkdir -p "$COCO_IMAGE_CACHE"
export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot
buildah() {
  command buildah --root "$COCO_CACHE/containers/storage" --runroot "$COCO_CACHE/containers/run" \
    --storage-driver vfs "$@"
}
