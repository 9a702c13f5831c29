#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, etcd and the node's kubelet and kube-scheduler
# from the Go module proxy into a per-version cache outside the repository. Prints the cache folder
# on its last line. A second run with the binaries present does nothing; a cache made before the
# node binaries existed builds only those (the Go build cache already holds most of their packages).
# K8S_VERSION picks the release: 1.N.P, or a minor (1.27) for the release test/env/versions.ts
# names; K8S_BINS narrows what is built (an older release tested without a node needs only
# "kube-apiserver kube-controller-manager").
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.36.3}"
K8S_VERSION="${K8S_VERSION#v}"
if [[ "$K8S_VERSION" =~ ^1\.[0-9]+$ ]]; then
  # The line `  '1.27': '1.27.16',` of KUBE_VERSIONS: one list of releases for the scripts and the tests.
  release="$(sed -n "s/^  '${K8S_VERSION//./\\.}': '\(1\.[0-9]*\.[0-9]*\)',\$/\1/p" "$(dirname "$0")/versions.ts")"
  [[ -n "$release" ]] || { echo "K8S_VERSION=$K8S_VERSION: test/env/versions.ts names no release of that minor" >&2; exit 1; }
  K8S_VERSION="$release"
fi
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
CACHE_ROOT="${SSS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/secret-store-sync}"
OUT="$CACHE_ROOT/control-plane/k8s-$K8S_VERSION-etcd-$ETCD_VERSION"

log() { printf '[control-plane %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

read -r -a K8S_BINS <<<"${K8S_BINS:-kube-apiserver kube-controller-manager kubelet kube-scheduler}"
missing_k8s() { local b; for b in "${K8S_BINS[@]}"; do [[ -x "$OUT/$b" ]] || echo "$b"; done; }
have_all() { [[ -x "$OUT/etcd" && -z "$(missing_k8s)" ]]; }
if have_all; then
  log "cached in $OUT"
  echo "$OUT"
  exit 0
fi

command -v go >/dev/null || { log "Go >= 1.24 is needed to build the control plane (go not found on PATH)"; exit 1; }
mkdir -p "$OUT"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"

build_kubernetes() {
  local mod="$WORK/k8s" minor staging gomod bins=("$@") b pkgs=()
  for b in "${bins[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  minor="$(cut -d. -f2 <<<"$K8S_VERSION")"
  staging="v0.${K8S_VERSION#1.}"
  mkdir -p "$mod" && cd "$mod"
  go mod init sss.local/control-plane >/dev/null 2>&1
  log "downloading k8s.io/kubernetes v$K8S_VERSION"
  gomod="$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  [[ -f "$gomod" ]] || { log "could not download the go.mod of k8s.io/kubernetes v$K8S_VERSION"; exit 1; }
  # Kubernetes resolves its staging modules through ./staging replaces, which a consumer does not
  # inherit; pin each one to its published tag. The list comes from this exact go.mod.
  go mod edit -go="$(sed -n 's/^go \([0-9.]*\).*/\1/p' "$gomod")"
  local godebug; godebug="$(sed -n 's/^godebug \(.*\)$/\1/p' "$gomod")"
  [[ -n "$godebug" ]] && go mod edit -godebug="$godebug"
  local count=0
  while read -r m; do
    go mod edit -replace="$m=$m@$staging"; count=$((count + 1))
  done < <(sed -n 's|^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/src/.*|\1|p' "$gomod")
  log "pinned $count staging modules to $staging; resolving dependencies"
  go get -tool "${pkgs[@]/%/@v$K8S_VERSION}" 2>&1 | tail -n 3 >&2
  local ldflags="-s -w" p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $p.gitVersion=v$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  log "compiling ${bins[*]} (cold, all four: 10-15 min on 2 cores)"
  go build -tags=selinux,notest,grpcnotrace -ldflags "$ldflags" -o "$WORK/bin/" "${pkgs[@]}"
}

build_etcd() {
  # A module of its own so etcd's dependency versions do not lift the apiserver's.
  local mod="$WORK/etcd"
  mkdir -p "$mod" && cd "$mod"
  go mod init sss.local/etcd >/dev/null 2>&1
  log "downloading etcd v$ETCD_VERSION"
  go get -tool "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" 2>&1 | tail -n 3 >&2
  log "compiling etcd"
  go build -ldflags "-s -w" -o "$WORK/bin/etcd" go.etcd.io/etcd/server/v3
}

start=$SECONDS
mkdir -p "$WORK/bin"
[[ -x "$OUT/etcd" ]] || build_etcd
mapfile -t todo < <(missing_k8s)
[[ ${#todo[@]} -eq 0 ]] || build_kubernetes "${todo[@]}"
# Move into place only when everything missing has built, so a half-finished build never looks cached.
mv "$WORK/bin/"* "$OUT/"
log "built in $((SECONDS - start)) s: $("$OUT/kube-apiserver" --version), etcd $("$OUT/etcd" --version | head -n1 | awk '{print $3}')"
echo "$OUT"
