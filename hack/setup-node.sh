#!/usr/bin/env bash
# Prepares the real test node (tests/harness/node.py, tests/node/): the Debian packages it runs on, kubelet,
# kube-controller-manager, kube-scheduler and kube-proxy built from Go modules, and the images it runs (pause, and
# the operator built from this tree). Everything is cached outside the repository; a second run only rebuilds the
# operator image when its inputs changed.
#
#   hack/setup-node.sh [--no-install]
#
# Prints KEY=VALUE lines on stdout (BIN, PAUSE_IMAGE, PAUSE_ARCHIVE, OPERATOR_IMAGE, OPERATOR_ARCHIVE) and the time
# of each step on stderr. --no-install: fail instead of installing missing packages (the test fixtures use it).
set -euo pipefail
cd "$(dirname "$0")/.."

# containerd (with its CRI plugin) and runc run the pods; the CNI plugins give the bridge network; iptables and
# conntrack are kube-proxy's; buildah and mmdebstrap make the images; gcc and libc6-dev build the static pause.
PACKAGES=(containerd runc containernetworking-plugins iptables conntrack buildah mmdebstrap gcc libc6-dev)
OPERATOR_IMAGE="${COCO_NODE_OPERATOR_IMAGE:-localhost/coco-operator:test}"
INSTALL=1
[[ "${1:-}" == "--no-install" ]] && INSTALL=0

log() { echo "[setup-node] $*" >&2; }
step_start=$SECONDS
step() { log "$1: $((SECONDS - step_start))s"; step_start=$SECONDS; }

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if ((!INSTALL)); then
    echo "error: Debian packages missing: ${missing[*]}; run hack/setup-node.sh (as root) to install them" >&2
    exit 1
  fi
  if [[ $EUID -ne 0 ]]; then
    echo "error: Debian packages missing: ${missing[*]}; install them as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
step "Debian packages"

BIN="$(bash hack/build-control-plane.sh node)"
step "kubelet, kube-controller-manager, kube-scheduler, kube-proxy, pause"

# shellcheck source=hack/buildah-env.sh
source hack/buildah-env.sh
# The pod sandbox image: the static pause binary alone.
PAUSE_VERSION="$(readlink "$BIN/pause" | sed 's/^pause-//')"
PAUSE_IMAGE="localhost/coco-pause:$PAUSE_VERSION"
PAUSE_ARCHIVE="$COCO_IMAGE_CACHE/pause-$PAUSE_VERSION.oci.tar"
if [[ ! -s "$PAUSE_ARCHIVE" ]]; then
  ctr="$(buildah from scratch)"
  buildah copy "$ctr" "$BIN/pause" /pause >/dev/null
  buildah config --entrypoint '["/pause"]' --user 65535:65535 "$ctr"
  buildah commit --rm -q "$ctr" "$PAUSE_IMAGE" >/dev/null
  buildah push -q "$PAUSE_IMAGE" "oci-archive:$PAUSE_ARCHIVE.tmp:$PAUSE_IMAGE" >&2
  mv "$PAUSE_ARCHIVE.tmp" "$PAUSE_ARCHIVE"
fi
step "pause image"

bash hack/base-image.sh >/dev/null
step "base image (Debian bookworm + Python 3.11)"

OPERATOR_ARCHIVE="$COCO_IMAGE_CACHE/operator.oci.tar"
bash hack/image.sh --tag "$OPERATOR_IMAGE" --archive "$OPERATOR_ARCHIVE" >/dev/null
step "operator image"

printf 'BIN=%s\nPAUSE_IMAGE=%s\nPAUSE_ARCHIVE=%s\nOPERATOR_IMAGE=%s\nOPERATOR_ARCHIVE=%s\n' \
  "$BIN" "$PAUSE_IMAGE" "$PAUSE_ARCHIVE" "$OPERATOR_IMAGE" "$OPERATOR_ARCHIVE"
