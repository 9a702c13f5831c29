#!/usr/bin/env bash
# Builds the helm CLI from the Go module proxy into a per-version cache outside the repository
# (no prebuilt download). Prints the binary's path on its last line; a present cache is reused.
set -euo pipefail
HELM_VERSION="${HELM_VERSION:-3.22.0}"
CACHE_ROOT="${SSS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/secret-store-sync}"
OUT="$CACHE_ROOT/helm/v$HELM_VERSION"
if [[ -x "$OUT/helm" ]]; then echo "$OUT/helm"; exit 0; fi
command -v go >/dev/null || { echo "Go >= 1.24 is needed to build helm" >&2; exit 1; }
mkdir -p "$OUT"
WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
export CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"
go mod init sss.local/helm >/dev/null 2>&1
echo "[helm] resolving helm.sh/helm/v3 v$HELM_VERSION" >&2
go get -tool "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION" 2>&1 | tail -n 2 >&2
echo "[helm] compiling (a few minutes the first time)" >&2
go build -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" -o "$WORK/helm" helm.sh/helm/v3/cmd/helm
mv "$WORK/helm" "$OUT/helm"
"$OUT/helm" version --short >&2
echo "$OUT/helm"
