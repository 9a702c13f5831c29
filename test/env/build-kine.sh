#!/usr/bin/env bash
# Builds kine, K3s's default datastore (the etcd API over SQLite), from the Go module proxy into a
# per-version cache outside the repository. Prints the binary's path on its last line; a present
# cache is reused. Its SQLite driver (modernc.org/sqlite) is pure Go, so no C compiler is needed.
set -euo pipefail
KINE_VERSION="${KINE_VERSION:-0.17.5}"
CACHE_ROOT="${SSS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/secret-store-sync}"
OUT="$CACHE_ROOT/kine/v$KINE_VERSION"
if [[ -x "$OUT/kine" ]]; then echo "$OUT/kine"; exit 0; fi
command -v go >/dev/null || { echo "Go >= 1.24 is needed to build kine" >&2; exit 1; }
mkdir -p "$OUT"
WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
export CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"
go mod init sss.local/kine >/dev/null 2>&1
echo "[kine] resolving github.com/k3s-io/kine v$KINE_VERSION" >&2
go get -tool "github.com/k3s-io/kine@v$KINE_VERSION" 2>&1 | tail -n 2 >&2
echo "[kine] compiling (a few minutes the first time)" >&2
go build -ldflags "-s -w -X github.com/k3s-io/kine/pkg/version.Version=v$KINE_VERSION" -o "$WORK/kine" github.com/k3s-io/kine
mv "$WORK/kine" "$OUT/kine"
echo "$OUT/kine"
