#!/usr/bin/env bash
# Builds promtool (Prometheus's rule checker and rule unit-test runner) from the Go module proxy
# into a per-version cache outside the repository (no prebuilt download). Prints the binary's
# path on its last line; a present cache is reused, so a second run does nothing.
set -euo pipefail
# Prometheus 3.x publishes its Go module as v0.3XX.Y for release 3.XX.Y.
PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-3.16.0}"
minor="$(cut -d. -f2 <<<"$PROMETHEUS_VERSION")"
patch="$(cut -d. -f3 <<<"$PROMETHEUS_VERSION")"
MODULE_VERSION="v0.$((300 + minor)).$patch"
CACHE_ROOT="${SSS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/secret-store-sync}"
OUT="$CACHE_ROOT/promtool/$PROMETHEUS_VERSION"

log() { printf '[promtool %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [[ -x "$OUT/promtool" ]]; then log "cached in $OUT"; echo "$OUT/promtool"; exit 0; fi
command -v go >/dev/null || { log "Go >= 1.26 is needed to build promtool (go not found on PATH)"; exit 1; }
mkdir -p "$OUT"
WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
export CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"
start=$SECONDS
go mod init sss.local/promtool >/dev/null 2>&1
log "resolving github.com/prometheus/prometheus $MODULE_VERSION (Prometheus $PROMETHEUS_VERSION)"
go get -tool "github.com/prometheus/prometheus/cmd/promtool@$MODULE_VERSION" 2>&1 | tail -n 3 >&2
log "compiling promtool (a few minutes the first time)"
v=github.com/prometheus/common/version
go build -ldflags "-s -w -X $v.Version=$PROMETHEUS_VERSION -X $v.Branch=HEAD -X $v.BuildUser=secret-store-sync" \
  -o "$WORK/promtool" github.com/prometheus/prometheus/cmd/promtool
# Moved into place only once built, so a half-finished build never looks cached.
mv "$WORK/promtool" "$OUT/promtool"
log "built in $((SECONDS - start)) s: $("$OUT/promtool" --version 2>&1 | head -n1)"
echo "$OUT/promtool"
