#!/usr/bin/env bash
# Renders the plain-manifest form of the chart (for `kubectl apply -f`) into deploy/manifests/:
# everything but the admission policies, and the policies on their own (their API is served from
# Kubernetes 1.30; a 1.27-1.29 cluster applies the first file only). The test suite re-renders both
# and fails when a committed file has drifted from the chart.
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
  "$HELM" template secret-store-sync deploy/chart/secret-store-sync --namespace azure-secret-store --kube-version 1.36.3 --set hashKey.create=false --set admissionPolicies.enabled=false
} > deploy/manifests/secret-store-sync.yaml
{
  echo "# Generated from deploy/chart/secret-store-sync by deploy/render-manifests.sh; do not edit."
  echo "# The ValidatingAdmissionPolicies (Kubernetes 1.30 and later): kubectl apply -f deploy/manifests/admission-policies.yaml"
  "$HELM" template secret-store-sync deploy/chart/secret-store-sync --namespace azure-secret-store --kube-version 1.36.3 --show-only templates/admission-policies.yaml
} > deploy/manifests/admission-policies.yaml
echo deploy/manifests/secret-store-sync.yaml deploy/manifests/admission-policies.yaml
