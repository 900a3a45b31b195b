#!/usr/bin/env bash
# Build kube-apiserver and etcd for the test control plane from the Go module proxy,
# into a cache folder outside the checkout, so a fresh clone on the same machine reuses them.
#
#   tests/controlplane/build.sh            # prints the folder holding both binaries
#
# k8s.io/kubernetes replaces its staging modules with local paths, so `go install` cannot
# build it; a small wrapper module requires it and points every staging module at its
# published version instead.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
out="${IMVJOB_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/imvjob/k8s-$KUBE_VERSION-etcd-$ETCD_VERSION}"
if [ -x "$out/kube-apiserver" ] && [ -x "$out/etcd" ]; then echo "$out"; exit 0; fi
command -v go >/dev/null || { echo "build.sh: Go is needed to build the test control plane" >&2; exit 1; }
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GOFLAGS=-mod=mod GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
log() { echo "controlplane: $*" >&2; }

if [ ! -x "$out/kube-apiserver" ]; then
  log "building kube-apiserver v$KUBE_VERSION (a cold build takes 10-20 minutes on 2 cores)"
  mkdir -p "$work/kube" && cd "$work/kube"
  cat > go.mod <<MOD
module imvjob.test/controlplane/kube

go 1.26.0

require k8s.io/kubernetes v$KUBE_VERSION
MOD
  go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" >/dev/null
  modfile=$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/v$KUBE_VERSION.mod
  {
    echo "replace ("
    sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\t\1 => \1 v0.'"${KUBE_VERSION#1.}"'#p' "$modfile"
    echo ")"
  } >> go.mod
  log "$(grep -c '=> k8s.io' go.mod) staging modules replaced by their published versions"
  go get "k8s.io/kubernetes/cmd/kube-apiserver@v$KUBE_VERSION" >&2
  go build -trimpath -ldflags=-s -o "$out/kube-apiserver.partial" k8s.io/kubernetes/cmd/kube-apiserver >&2
  mv "$out/kube-apiserver.partial" "$out/kube-apiserver"
  log "kube-apiserver built"
fi

if [ ! -x "$out/etcd" ]; then
  log "building etcd v$ETCD_VERSION"
  mkdir -p "$work/etcd" && cd "$work/etcd"
  cat > go.mod <<MOD
module imvjob.test/controlplane/etcd

go 1.26.0

require go.etcd.io/etcd/server/v3 v$ETCD_VERSION
MOD
  go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >&2
  go build -trimpath -ldflags=-s -o "$out/etcd.partial" go.etcd.io/etcd/server/v3 >&2
  mv "$out/etcd.partial" "$out/etcd"
  log "etcd built"
fi
echo "$out"
