#!/usr/bin/env bash
# Builds kube-apiserver, etcd and helm from Go modules into a cache outside the repository; `node` also builds
# kubelet, kube-controller-manager, kube-scheduler, kube-proxy and the pause binary for the real node.
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

# The Kubernetes commands built from the k8s.io/kubernetes module: the API server for every test, the rest for the
# real node (tests/harness/node.py). One wrapper module lists them all, so one `go mod tidy` serves every build.
KUBE_CMDS=(kube-apiserver kubelet kube-controller-manager kube-scheduler kube-proxy)

kube_module() {
  local work="$CACHE/src/kube-$K8S_VERSION" tools
  tools="$(printf '//go:build tools\n\npackage tools\n\nimport (\n'; printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "${KUBE_CMDS[@]}"; printf ')\n')"
  [[ -f "$work/go.sum" && -f "$work/tools.go" && "$(cat "$work/tools.go")" == "$tools" ]] && return 0
  local minor; minor="$(echo "$K8S_VERSION" | cut -d. -f2)"
  local staging="v0.${minor}.$(echo "$K8S_VERSION" | cut -d. -f3)"
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
  echo "$tools" > "$work/tools.go"
  (cd "$work" && go mod tidy >&2)
}

# build_kube CMD...: the commands not in the cache yet, in one `go build` (shared packages compile once).
build_kube() {
  local missing=() cmd
  for cmd in "$@"; do [[ -x "$BIN/$cmd-$K8S_VERSION" ]] || missing+=("$cmd"); done
  ((${#missing[@]})) || return 0
  kube_module
  local minor; minor="$(echo "$K8S_VERSION" | cut -d. -f2)"
  local out="$CACHE/src/kube-$K8S_VERSION/out"
  rm -rf "$out"; mkdir -p "$out"
  log "building ${missing[*]} $K8S_VERSION (several minutes on a cold cache)"
  (cd "$CACHE/src/kube-$K8S_VERSION" && go build -o "$out/" \
    -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" \
    "${missing[@]/#/k8s.io/kubernetes/cmd/}" >&2)
  for cmd in "${missing[@]}"; do mv "$out/$cmd" "$BIN/$cmd-$K8S_VERSION"; done
}

# The pod sandbox's pause process, from the same module's build/pause/linux/pause.c (a static C program).
build_pause() {
  local out="$BIN/pause-$K8S_VERSION"
  [[ -x "$out" ]] && return 0
  kube_module
  local src
  src="$(cd "$CACHE/src/kube-$K8S_VERSION" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c"
  log "building pause from $src"
  gcc -Os -Wall -Werror -static -DVERSION="$K8S_VERSION" -o "$out.tmp" "$src" >&2
  strip "$out.tmp"
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
  apiserver) build_kube kube-apiserver ;;
  etcd) build_etcd ;;
  helm) build_helm ;;
  all) build_etcd; build_kube kube-apiserver; build_helm ;;
  # The real node: kubelet, controller-manager, scheduler, kube-proxy and the pause binary (hack/setup-node.sh).
  node) build_etcd; build_kube "${KUBE_CMDS[@]}"; build_helm; build_pause ;;
  *) echo "usage: $0 [all|node|apiserver|etcd|helm]" >&2; exit 2 ;;
esac
for cmd in "${KUBE_CMDS[@]}" pause; do
  if [[ -x "$BIN/$cmd-$K8S_VERSION" ]]; then ln -sf "$cmd-$K8S_VERSION" "$BIN/$cmd"; fi
done
[[ -x "$BIN/etcd-$ETCD_VERSION" ]] && ln -sf "etcd-$ETCD_VERSION" "$BIN/etcd"
[[ -x "$BIN/helm-$HELM_VERSION" ]] && ln -sf "helm-$HELM_VERSION" "$BIN/helm"
echo "$BIN"
