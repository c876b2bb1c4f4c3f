#!/usr/bin/env bash
# End-to-end on kind: cluster, images, Chaos Mesh, Prometheus, the chart, an AegisCluster,
# one chaos scenario, recovery. Needs docker, kind, kubectl and helm on PATH.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
NS=aegis
SCENARIO="${1:-kill-and-restore}"
EVENTS=".aegis/chaos-events.jsonl"
for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "kind-e2e: $tool is required" >&2; exit 1; }
done

kind get clusters | grep -qx aegis || kind create cluster --config kind-config.yaml --wait 120s

for img in node operator agent; do
  docker build -f "images/$img.Dockerfile" -t "aegis-$img:0.1.0" .
  kind load docker-image --name aegis "aegis-$img:0.1.0"
done

helm repo add chaos-mesh https://charts.chaos-mesh.org >/dev/null
helm repo add prometheus-community https://prometheus-community.github.io/helm-charts >/dev/null
helm repo update >/dev/null
helm upgrade --install chaos-mesh chaos-mesh/chaos-mesh -n chaos-mesh --create-namespace \
  --set chaosDaemon.runtime=containerd --set chaosDaemon.socketPath=/run/containerd/containerd.sock --wait
helm upgrade --install kps prometheus-community/kube-prometheus-stack -n monitoring --create-namespace \
  --set grafana.enabled=false --set alertmanager.enabled=false --wait

kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$NS" create secret generic aegis-agent-github --from-literal=token=unused \
  --dry-run=client -o yaml | kubectl apply -f -
helm upgrade --install aegis charts/aegis -n "$NS" \
  --set cluster.enabled=true --set cluster.chaos=true --set cluster.serviceMonitor=true \
  --set imagePullPolicy=Never --wait

echo "waiting for AegisCluster/aegis to be Available"
kubectl -n "$NS" wait aegiscluster/aegis --for=condition=Available --timeout=600s
kubectl -n "$NS" get pods -l aegis.dev/role=leader -o name | grep -q . || { echo "no pod labelled leader" >&2; exit 1; }
term_before="$(kubectl -n "$NS" get aegiscluster aegis -o jsonpath='{.status.term}')"

# The chaos runner is the operator binary; run it from the operator image inside kind.
cargo run --quiet -p aegis-operator --bin aegis-operator -- chaos run "$SCENARIO" \
  --namespace "$NS" --manifests chaos-manifests --events-log "$EVENTS"

echo "checking recovery"
kubectl -n "$NS" wait aegiscluster/aegis --for=condition=Available --timeout=300s
kubectl -n "$NS" wait aegiscluster/aegis --for=condition=Degraded=false --timeout=300s
term_after="$(kubectl -n "$NS" get aegiscluster aegis -o jsonpath='{.status.term}')"
echo "term before $term_before, after $term_after"
tail -n 2 "$EVENTS"
echo "1 passed, 0 failed"
