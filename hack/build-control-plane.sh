#!/usr/bin/env bash
# Builds kube-apiserver, etcd and helm from Go modules into a cache outside the repository.
# Idempotent: a binary already in the cache is reused. Prints the bin directory on stdout.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
CACHE="${COCO_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/coco-operator}"
BIN="$CACHE/bin"
mkdir -p "$BIN"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

log() { echo "[build-control-plane] $*" >&2; }

build_apiserver() {
  local out="$BIN/kube-apiserver-$K8S_VERSION"
  [[ -x "$out" ]] && return 0
  local minor; minor="$(echo "$K8S_VERSION" | cut -d. -f2)"
  local staging="v0.${minor}.$(echo "$K8S_VERSION" | cut -d. -f3)"
  local work="$CACHE/src/kube-$K8S_VERSION"
  rm -rf "$work"; mkdir -p "$work"
  log "resolving k8s.io/kubernetes@$K8S_VERSION"
  local gomod
  gomod="$(cd "$work" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
  {
    echo "module coco.rs/controlplane"
    echo
    echo "go 1.24"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    # every staging module the kubernetes go.mod replaces with a local path
    grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" | awk -v v="$staging" '{print "replace " $1 " => " $1 " " v}'
  } > "$work/go.mod"
  cat > "$work/tools.go" <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
  log "building kube-apiserver $K8S_VERSION (several minutes on a cold cache)"
  (cd "$work" && go mod tidy >&2 && go build -o "$out.tmp" \
    -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" \
    k8s.io/kubernetes/cmd/kube-apiserver >&2)
  mv "$out.tmp" "$out"
}

build_etcd() {
  local out="$BIN/etcd-$ETCD_VERSION"
  [[ -x "$out" ]] && return 0
  local work="$CACHE/src/etcd-$ETCD_VERSION"
  rm -rf "$work"; mkdir -p "$work"
  printf 'module coco.rs/etcd\n\ngo 1.24\n' > "$work/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > "$work/tools.go"
  log "building etcd $ETCD_VERSION"
  (cd "$work" && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2 && go mod tidy >&2 \
    && go build -ldflags "-s -w" -o "$out.tmp" go.etcd.io/etcd/server/v3 >&2)
  mv "$out.tmp" "$out"
}

build_helm() {
  local out="$BIN/helm-$HELM_VERSION"
  [[ -x "$out" ]] && return 0
  log "building helm $HELM_VERSION"
  GOBIN="$CACHE/src/helm-$HELM_VERSION" go install -ldflags "-s -w" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
  mv "$CACHE/src/helm-$HELM_VERSION/helm" "$out"
}

what="${1:-all}"
case "$what" in
  apiserver) build_apiserver ;;
  etcd) build_etcd ;;
  helm) build_helm ;;
  all) build_etcd; build_apiserver; build_helm ;;
  *) echo "usage: $0 [all|apiserver|etcd|helm]" >&2; exit 2 ;;
esac
ln -sf "kube-apiserver-$K8S_VERSION" "$BIN/kube-apiserver" 2>/dev/null || true
[[ -x "$BIN/etcd-$ETCD_VERSION" ]] && ln -sf "etcd-$ETCD_VERSION" "$BIN/etcd"
[[ -x "$BIN/helm-$HELM_VERSION" ]] && ln -sf "helm-$HELM_VERSION" "$BIN/helm"
echo "$BIN"
