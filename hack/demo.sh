#!/usr/bin/env bash
# Local demo on one machine, no Docker needed: a real kube-apiserver + etcd, the emulated Confluence (the demo
# space) and Meilisearch, the operator, the example Connector/Secret/Datasource, then a search that shows hits.
# `hack/demo.sh --keep` leaves everything running until Ctrl-C (KUBECONFIG is printed) so you can explore.
set -euo pipefail
cd "$(dirname "$0")/.."
KEEP=false; [[ "${1:-}" == "--keep" ]] && KEEP=true
DEMO="${DEMO_DIR:-$PWD/.demo}"
MEILI_PORT="${MEILI_PORT:-7700}"; CONFLUENCE_PORT="${CONFLUENCE_PORT:-8090}"
MEILI_KEY="demo-master-key"

bash hack/setup.sh
rm -rf "$DEMO"; mkdir -p "$DEMO"
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
PY=.venv/bin/python

wait_line() {  # wait until FILE contains TEXT
  for _ in $(seq 1 240); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.5; done
  echo "timed out waiting for '$2' in $1:"; tail -20 "$1"; exit 1
}

echo "== starting kube-apiserver and etcd"
$PY -m tests.harness.controlplane up --dir "$DEMO/controlplane" >"$DEMO/controlplane.log" 2>&1 & PIDS+=($!)
wait_line "$DEMO/controlplane.log" "KUBECONFIG="
export KUBECONFIG="$DEMO/controlplane/kubeconfig"

echo "== starting the Meilisearch emulator and the Confluence emulator (demo space DOCS)"
$PY -m tests.emulators.meilisearch --port "$MEILI_PORT" --master-key "$MEILI_KEY" >"$DEMO/meili.log" 2>&1 & PIDS+=($!)
$PY -m tests.emulators.confluence --edition cloud --port "$CONFLUENCE_PORT" --seed demo >"$DEMO/confluence.log" 2>&1 & PIDS+=($!)
wait_line "$DEMO/meili.log" "listening"
wait_line "$DEMO/confluence.log" "listening"

echo "== installing the CRDs, the builtin Connector and the example Datasource"
kubectl apply -f crds/ >/dev/null
kubectl wait --for=condition=Established crd/datasources.coco.rs crd/connectors.coco.rs --timeout=60s >/dev/null
kubectl apply -f manifests/examples/connector-confluence.yaml
kubectl create namespace docs --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n docs create secret generic confluence-token --from-literal=token=demo-token --dry-run=client -o yaml \
  | kubectl label --local -f - coco.rs/usable-by-datasources=true -o yaml | kubectl apply -f -
sed -e "s#https://your-company.atlassian.net/wiki#http://127.0.0.1:$CONFLUENCE_PORT/wiki#" \
    -e "s#your-email@example.com#demo@example.com#" \
    -e "s#enable_blogposts: false#enable_blogposts: true#" \
    -e "s#enable_attachments: false#enable_attachments: true#" \
    manifests/examples/datasource-cloud.yaml | kubectl apply -f -

echo "== starting the operator"
COCO_MEILI_URL="http://127.0.0.1:$MEILI_PORT" COCO_MEILI_API_KEY="$MEILI_KEY" COCO_HEALTH_PORT=0 COCO_METRICS_PORT=0 COCO_ALLOW_HTTP=true COCO_ALLOW_PRIVATE_NETWORKS=true \
  .venv/bin/coco-operator run >"$DEMO/operator.log" 2>&1 & PIDS+=($!)

kubectl -n docs wait --for=condition=Ready datasource/eng-wiki --timeout=180s >/dev/null \
  || { echo "the Datasource did not become Ready:"; kubectl -n docs get datasource eng-wiki -o yaml; tail -30 "$DEMO/operator.log"; exit 1; }
echo; kubectl get connectors; echo; kubectl get datasources -A; echo

echo "== searching Meilisearch for 'deploy'"
$PY - "$MEILI_PORT" "$MEILI_KEY" <<'PY'
import sys, meilisearch
client = meilisearch.Client(f"http://127.0.0.1:{sys.argv[1]}", sys.argv[2])
res = client.index("coco_documents").search("deploy", {"limit": 5, "attributesToRetrieve": ["title", "type", "url"]})
print(f"{res['estimatedTotalHits']} hits")
for hit in res["hits"]:
    print(f"  [{hit['type']}] {hit['title']}  {hit['url']}")
if not res["hits"]:
    sys.exit("no hits: the demo did not index the space")
PY
if $KEEP; then
  echo; echo "Running. In another shell: export KUBECONFIG=$KUBECONFIG ; kubectl get datasources -A -w"
  echo "Meilisearch: http://127.0.0.1:$MEILI_PORT (key $MEILI_KEY). Ctrl-C stops everything."
  wait
fi
