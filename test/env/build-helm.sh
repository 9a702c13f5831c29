#!/usr/bin/env bash
# Builds the helm CLI from the Go module proxy into a per-version cache outside the repository
# (no prebuilt download). Prints the binary's path on its last line; a present cache is reused.
# Built as helm's own Makefile builds its releases: the Kubernetes version that `helm template` and
# `helm lint` assume without --kube-version is that of helm's client-go (v1.37 for helm 3.22), not
# the v1.20 compiled in as a fallback, against which the chart's kubeVersion fails.
set -euo pipefail
HELM_VERSION="${HELM_VERSION:-3.22.0}"
CACHE_ROOT="${SSS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/secret-store-sync}"
# -k8s: the build with the Makefile's version flags (a plain build's cache is left alone).
OUT="$CACHE_ROOT/helm/v$HELM_VERSION-k8s"
if [[ -x "$OUT/helm" ]]; then echo "$OUT/helm"; exit 0; fi
command -v go >/dev/null || { echo "Go >= 1.24 is needed to build helm" >&2; exit 1; }
mkdir -p "$OUT"
WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
export CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"
go mod init sss.local/helm >/dev/null 2>&1
echo "[helm] resolving helm.sh/helm/v3 v$HELM_VERSION" >&2
go get -tool "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION" 2>&1 | tail -n 2 >&2
# client-go v0.X.Y is Kubernetes v1.X (helm's Makefile: K8S_MODULES_MAJOR_VER, _MINOR_VER).
CLIENT_GO="$(go list -f '{{.Version}}' -m k8s.io/client-go)"
KUBE_MINOR="$(echo "$CLIENT_GO" | cut -d. -f2)"
KUBE_MAJOR="$(( $(echo "${CLIENT_GO#v}" | cut -d. -f1) + 1 ))"
LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION"
for pkg in pkg/lint/rules pkg/chartutil; do
  LDFLAGS+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=$KUBE_MAJOR -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$KUBE_MINOR"
done
echo "[helm] compiling for Kubernetes v$KUBE_MAJOR.$KUBE_MINOR by default (a few minutes the first time)" >&2
go build -ldflags "$LDFLAGS" -o "$WORK/helm" helm.sh/helm/v3/cmd/helm
mv "$WORK/helm" "$OUT/helm"
"$OUT/helm" version --short >&2
echo "$OUT/helm"
