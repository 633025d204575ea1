# lib.sh - settings and helpers shared by the cluster scripts. Sourced, not run.
# shellcheck shell=bash disable=SC2034  # variables are used by the scripts sourcing this
#
# Interface used by the Makefile, the e2e tests and scripts outside the
# project: the admin kubeconfig at $REPO/.cluster/kubeconfig and the matching
# kubectl at $REPO/.cluster/bin/kubectl.
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
K8S_VERSION=${K8S_VERSION:-v1.35.4}
# Built binaries are cached by version, outside the work tree, so a fresh
# clone on the same machine does not rebuild Kubernetes (~7 min on 2 cores).
KTRACE_CACHE=${KTRACE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-trace}
K8S_BIN=$KTRACE_CACHE/k8s-$K8S_VERSION/bin
# Runtime state: short fixed path, because containerd's unix sockets must fit
# in 108 bytes wherever the repo is cloned.
KTC=${KTC:-/tmp/ktrace-cluster}
CLUSTER_DIR=$REPO/.cluster
export PATH=/usr/local/go/bin:$PATH

# Layout of $KTC (all of it is wiped by down.sh except logs/).
RUN=$KTC/run                    # <component>.pid, sockets, node-ip, images.imported
LOG=$KTC/logs                   # <component>.log of the last cluster
PKI=$KTC/pki
CONF=$KTC/conf
CTR_SOCK=$RUN/containerd.sock
# Images imported into containerd at start (up.sh) and by load.sh.
IMAGES_DIR=$REPO/bin/images
# Host-visible names, chosen so down.sh removes only what is ours.
BRIDGE=ktrace0                  # CNI bridge
CNI_NET=ktrace                  # CNI network name (libcni cache entries)
COMPONENTS="etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet"

_T0=${EPOCHREALTIME/./}
# stamp MSG: progress line on stderr with wall clock and seconds since start.
stamp() {
  local d=$(( (${EPOCHREALTIME/./} - _T0) / 100000 ))
  printf '[%(%T)T +%d.%ds] %s\n' -1 $((d / 10)) $((d % 10)) "$*" >&2
}
die() { stamp "ERROR: $*"; exit 1; }

ctr_k8s() { ctr --address "$CTR_SOCK" -n k8s.io "$@"; }

# alive NAME: the PID recorded for NAME runs, and is still that program (a
# stale pid file after a reboot must not make us signal a stranger).
alive() {
  local pid exe
  pid=$(cat "$RUN/$1.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  case ${exe##*/} in "$1"|"$1 (deleted)") return 0 ;; esac
  return 1
}

# cluster_lock: one up.sh/down.sh/load.sh at a time. The lock file lives
# beside $KTC because down.sh wipes $KTC; up.sh runs down.sh with the lock
# already held (KTRACE_CLUSTER_LOCKED). Daemons must not inherit fd 9.
cluster_lock() {
  [ -n "${KTRACE_CLUSTER_LOCKED:-}" ] && return
  exec 9>"$KTC.lock"
  if ! flock -n 9; then
    stamp "waiting for another up.sh/down.sh/load.sh to finish"
    flock 9
  fi
  export KTRACE_CLUSTER_LOCKED=1
}

# import_image FILE: import a docker-archive tarball into containerd's k8s.io
# namespace and remember its size and mtime, so up.sh skips it next time.
import_image() {
  local f key out
  f=$(realpath "$1")
  key=$(stat -c '%n %s %Y' "$f")
  out=$(ctr_k8s images import "$f" 2>&1) || die "importing $f: $out"
  { grep -v "^$f " "$RUN/images.imported" 2>/dev/null || true; echo "$key"; } > "$RUN/images.imported.tmp"
  mv "$RUN/images.imported.tmp" "$RUN/images.imported"
  stamp "imported $f: $(echo "$out" | sed -n 's/^unpacking \([^ ]*\) .*/\1/p' | tr '\n' ' ')"
}

# imported_already FILE: FILE is unchanged since import_image took it.
imported_already() {
  grep -qxF "$(stat -c '%n %s %Y' "$(realpath "$1")")" "$RUN/images.imported" 2>/dev/null
}
