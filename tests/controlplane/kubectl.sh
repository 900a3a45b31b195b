#!/usr/bin/env bash
# Build kubectl at the control plane's version (versions.env) from the Go module proxy, into a
# cache folder outside the checkout; prints the binary's path. Debian's kubernetes-client is
# 1.20, far outside kubectl's supported skew of one minor version from the API server.
#
# The wrapper module kubectl/ is kube/'s (k8s.io/kubernetes with its staging modules pointed
# at their published versions) with the checksums of kubectl's own dependencies; to regenerate
# it after changing versions.env: copy kube/go.mod there (module name aside), then
# `GOFLAGS=-mod=mod go get k8s.io/kubernetes/cmd/kubectl@vX && go list -deps k8s.io/kubernetes/cmd/kubectl`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
log() { echo "kubectl: $*" >&2; }
die() { log "$*"; exit 1; }

# shellcheck source=versions.env
. "$here/versions.env"
out="${IMVJOB_KUBECTL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/imvjob/kubectl-$KUBE_VERSION}"
bin="$out/kubectl"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
command -v go >/dev/null || die "Go is needed to build kubectl"
grep -Eq "^(require)?[[:space:]]*k8s.io/kubernetes v$KUBE_VERSION([[:space:]]|\$)" "$here/kubectl/go.mod" ||
  die "tests/controlplane/kubectl/go.mod does not require k8s.io/kubernetes v$KUBE_VERSION (see the comment above)"
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/kubectl/go.mod" "$here/kubectl/go.sum" "$work/"
cd "$work"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}" GOFLAGS=-mod=readonly
start=$SECONDS
log "building kubectl v$KUBE_VERSION (a cold build takes several minutes on 2 cores)"
v=k8s.io/client-go/pkg/version
minor=${KUBE_VERSION#*.}; minor=${minor%%.*}
# Stamped as Kubernetes' own build does, so `kubectl version` tells the truth.
go build -trimpath -o "$bin.partial" -ldflags="-s \
  -X $v.gitVersion=v$KUBE_VERSION -X $v.gitMajor=${KUBE_VERSION%%.*} -X $v.gitMinor=$minor \
  -X $v.gitTreeState=clean -X $v.buildDate=1970-01-01T00:00:00Z" \
  k8s.io/kubernetes/cmd/kubectl >&2 || die "kubectl build failed"
mv "$bin.partial" "$bin"
log "built in $((SECONDS - start))s"
echo "$bin"
