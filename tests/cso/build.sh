#!/usr/bin/env bash
# Build the Container Security Operator's security-labeller (the differential test's reference)
# from the Go module proxy, into a cache folder outside the checkout; prints the binary's path.
#
# The proxy serves only v1.0.6 and refuses the module's version list, so `go install …@v1.0.6`
# fails; `go mod download` of that exact version works, and the labeller builds in a writable
# copy of the downloaded module, its dependencies pinned by the module's own go.sum.
set -euo pipefail
log() { echo "cso: $*" >&2; }
die() { log "$*"; exit 1; }

CSO_VERSION=1.0.6
out="${IMVJOB_CSO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/imvjob/cso-$CSO_VERSION}"
bin="$out/security-labeller"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
command -v go >/dev/null || die "Go is needed to build CSO's security-labeller"
mkdir -p "$out"
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}" GOFLAGS=-mod=mod

start=$SECONDS
log "downloading github.com/quay/container-security-operator@v$CSO_VERSION"
dir=$(go mod download -json "github.com/quay/container-security-operator@v$CSO_VERSION" |
  sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
[ -d "$dir" ] || die "the module proxy did not give github.com/quay/container-security-operator@v$CSO_VERSION"
# The module cache is read-only; go build needs to write go.sum's missing lines.
cp -r "$dir" "$work/cso" && chmod -R u+w "$work/cso"
log "building security-labeller v$CSO_VERSION (a cold build takes about a minute on 2 cores)"
(cd "$work/cso" && go build -trimpath -ldflags=-s -o "$bin.partial" ./cmd/security-labeller) >&2 ||
  die "security-labeller build failed"
mv "$bin.partial" "$bin"
log "built in $((SECONDS - start))s"
echo "$bin"
