#!/usr/bin/env bash
# build.sh - install the host packages and build the Kubernetes binaries the
# local test cluster needs. Idempotent: skips whatever is already there.
#
#   build.sh [all|apt|k8s]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

APT_PKGS="etcd-server containerd runc containernetworking-plugins iptables conntrack socat openssl
  curl ca-certificates tcpdump iproute2 util-linux busybox-static tshark procps psmisc
  clang-14 llvm-14 libbpf-dev bpftool"

do_apt() {
  local missing=()
  for p in $APT_PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep 'install ok installed' >/dev/null || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  stamp "apt-get install ${missing[*]}"
  apt-get update -qq
  # tshark asks whether non-root users may capture; the default (no) is fine.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# Kubernetes from the Go module proxy. k8s.io/kubernetes' go.mod replaces its
# staging modules (k8s.io/api, ...) with ./staging paths that are not in the
# module zip, so a throwaway consumer module replaces each with the published
# v0.X.Y tag matching v1.X.Y.
do_k8s() {
  local cmds="kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl" missing=()
  for c in $cmds; do [ -x "$K8S_BIN/$c" ] || missing+=("$c"); done
  [ ${#missing[@]} -eq 0 ] && return
  local d=$KTRACE_CACHE/k8s-$K8S_VERSION/build staging_ver=v0.${K8S_VERSION#v1.}
  mkdir -p "$d" "$K8S_BIN"
  cd "$d"
  export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
  local upstream_mod
  upstream_mod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    printf 'module ktrace.local/k8sbuild\n\ngo 1.25.0\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$K8S_VERSION"
    grep -E '^\s+k8s\.io/[a-z0-9-]+ => \./staging/' "$upstream_mod" |
      awk -v v="$staging_ver" '{print "\t" $1 " => " $1 " " v}'
    echo ")"
  } > go.mod
  stamp "resolving k8s.io/kubernetes $K8S_VERSION"
  go get $(for c in $cmds; do echo "k8s.io/kubernetes/cmd/$c@$K8S_VERSION"; done) >/dev/null 2>&1
  # Stamp the real version: otherwise the binaries say v0.0.0-master and
  # version-skew checks get confused. No build date: reproducible.
  local pkg=k8s.io/component-base/version
  local ld="-s -w -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)"
  ld+=" -X $pkg.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  for c in "${missing[@]}"; do
    stamp "go build $c $K8S_VERSION (the first one takes ~4 min on 2 cores)"
    go build -trimpath -ldflags "$ld" -o "$K8S_BIN/$c.tmp" "k8s.io/kubernetes/cmd/$c"
    mv "$K8S_BIN/$c.tmp" "$K8S_BIN/$c"
  done
}

case "${1:-all}" in
  apt) do_apt ;;
  k8s) do_k8s ;;
  all) do_apt; do_k8s ;;
  *) echo "usage: $0 [all|apt|k8s]" >&2; exit 2 ;;
esac
