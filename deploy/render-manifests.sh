#!/usr/bin/env bash
# Renders the plain-manifest form of the chart (for `kubectl apply -f`) into deploy/manifests/.
# The test suite re-renders it and fails when the committed file has drifted from the chart.
set -euo pipefail
cd "$(dirname "$0")/.."
HELM="$(bash test/env/build-helm.sh | tail -n1)"
{
  echo "# Generated from deploy/chart/secret-store-sync by deploy/render-manifests.sh; do not edit."
  echo "# Install: kubectl apply -f deploy/crds/ && kubectl apply -f deploy/manifests/secret-store-sync.yaml"
  echo "# The manager reads its hash key from this Secret; create it once:"
  echo "#   kubectl -n azure-secret-store create secret generic secret-store-sync-hash-key --from-literal=key=\"\$(openssl rand -hex 32)\""
  echo "apiVersion: v1"
  echo "kind: Namespace"
  echo "metadata:"
  echo "  name: azure-secret-store"
  echo "---"
  "$HELM" template secret-store-sync deploy/chart/secret-store-sync --namespace azure-secret-store --kube-version 1.36.3 --set hashKey.create=false
} > deploy/manifests/secret-store-sync.yaml
echo deploy/manifests/secret-store-sync.yaml
