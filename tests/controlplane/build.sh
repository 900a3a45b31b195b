#!/usr/bin/env bash
# Build kube-apiserver and etcd for the test control plane from the Go module proxy, into a
# cache folder outside the checkout, so a fresh clone on the same machine reuses them.
#
#   tests/controlplane/build.sh                    # prints the folder holding both binaries
#   tests/controlplane/build.sh --update-modules   # after changing versions.env: regenerate
#                                                  # kube/ and etcd/ go.mod + go.sum, then build
#
# When KUBEBUILDER_ASSETS is set (the envtest convention), it must hold both binaries and is
# printed as is. k8s.io/kubernetes replaces its staging modules with local paths, so
# `go install` cannot build it: the wrapper module kube/ requires it and points every staging
# module at its published version instead; etcd/ requires etcd's server module. Both go.mod
# and go.sum are kept in the project, so every build uses exactly the same dependencies.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
log() { echo "controlplane: $*" >&2; }
die() { log "$*"; exit 1; }

if [ -n "${KUBEBUILDER_ASSETS:-}" ]; then
  [ -x "$KUBEBUILDER_ASSETS/kube-apiserver" ] && [ -x "$KUBEBUILDER_ASSETS/etcd" ] ||
    die "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS does not hold executable kube-apiserver and etcd"
  echo "$KUBEBUILDER_ASSETS"; exit 0
fi

update=false
case "${1:-}" in
  "") ;;
  --update-modules) update=true ;;
  *) die "usage: $0 [--update-modules]" ;;
esac

# shellcheck source=versions.env
. "$here/versions.env"
out="${IMVJOB_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/imvjob/k8s-$KUBE_VERSION-etcd-$ETCD_VERSION}"
if ! $update && [ -x "$out/kube-apiserver" ] && [ -x "$out/etcd" ]; then echo "$out"; exit 0; fi
command -v go >/dev/null || die "Go is needed to build the test control plane (or set KUBEBUILDER_ASSETS)"
mkdir -p "$out"
work=$(mktemp -d)
pid=""
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}" GOFLAGS=-mod=readonly

# Run a long command, saying every minute that it still runs.
with_heartbeat() {
  local what=$1 start=$SECONDS next=60; shift
  "$@" >&2 & pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 2
    if [ $((SECONDS - start)) -ge $next ]; then
      log "$what: still running, $((SECONDS - start))s"; next=$((next + 60))
    fi
  done
  wait "$pid" || { local rc=$?; pid=""; die "$what failed (exit $rc)"; }
  pid=""
  log "$what: done in $((SECONDS - start))s"
}

# Regenerate a wrapper module's go.mod and go.sum from versions.env (needs the module proxy).
regenerate_kube() {
  cat > go.mod <<MOD
module imvjob.test/controlplane/kube

go 1.26.0

require k8s.io/kubernetes v$KUBE_VERSION
MOD
  GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" >/dev/null
  local modfile
  modfile=$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/v$KUBE_VERSION.mod
  {
    echo "replace ("
    sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\t\1 => \1 v0.'"${KUBE_VERSION#1.}"'#p' "$modfile"
    echo ")"
  } >> go.mod
  log "$(grep -c '=> k8s.io' go.mod) staging modules replaced by their published versions"
  GOFLAGS=-mod=mod go get "k8s.io/kubernetes/cmd/kube-apiserver@v$KUBE_VERSION" >&2
}

regenerate_etcd() {
  cat > go.mod <<MOD
module imvjob.test/controlplane/etcd

go 1.26.0

require go.etcd.io/etcd/server/v3 v$ETCD_VERSION
MOD
  GOFLAGS=-mod=mod go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >&2
}

# Copy the project's wrapper module into the work dir (or regenerate it there and write it
# back), checking that it pins what versions.env says.
prepare() {
  local name=$1 module=$2 version=$3 package=$4
  mkdir -p "$work/$name" && cd "$work/$name"
  if $update; then
    "regenerate_$name"
    # Record the checksum of every module the build will read.
    GOFLAGS=-mod=mod go list -deps "$package" >/dev/null
    cp go.mod go.sum "$here/$name/"
    log "wrote tests/controlplane/$name/go.mod and go.sum"
  else
    cp "$here/$name/go.mod" "$here/$name/go.sum" .
  fi
  grep -Eq "^(require)?[[:space:]]*$module v$version([[:space:]]|\$)" go.mod ||
    die "tests/controlplane/$name/go.mod does not require $module v$version as versions.env says; run $0 --update-modules"
}

if $update || [ ! -x "$out/kube-apiserver" ]; then
  prepare kube k8s.io/kubernetes "$KUBE_VERSION" k8s.io/kubernetes/cmd/kube-apiserver
  log "building kube-apiserver v$KUBE_VERSION (a cold build takes 10-20 minutes on 2 cores)"
  # Stamp the version as Kubernetes' own build does, so /version answers v$KUBE_VERSION.
  v=k8s.io/component-base/version
  minor=${KUBE_VERSION#*.}; minor=${minor%%.*}
  with_heartbeat "kube-apiserver build" \
    go build -trimpath -o "$out/kube-apiserver.partial" -ldflags="-s \
      -X $v.gitVersion=v$KUBE_VERSION -X $v.gitMajor=${KUBE_VERSION%%.*} -X $v.gitMinor=$minor \
      -X $v.gitTreeState=clean -X $v.buildDate=1970-01-01T00:00:00Z" \
      k8s.io/kubernetes/cmd/kube-apiserver
  mv "$out/kube-apiserver.partial" "$out/kube-apiserver"
fi

if $update || [ ! -x "$out/etcd" ]; then
  prepare etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION" go.etcd.io/etcd/server/v3
  log "building etcd v$ETCD_VERSION (a cold build takes a few minutes)"
  with_heartbeat "etcd build" \
    go build -trimpath -ldflags=-s -o "$out/etcd.partial" go.etcd.io/etcd/server/v3
  mv "$out/etcd.partial" "$out/etcd"
fi
echo "$out"
