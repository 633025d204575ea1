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
LOG=$KTC/logs                   # <component>.log of the last cluster, <extra node>/*.log
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

# Extra nodes (add-node.sh, remove-node.sh): node NAME keeps its state in
# $NODES/NAME (run/ with its PIDs and sockets, index = its number, >= 2) and
# its logs in $LOG/NAME; node_vars derives everything else from the index.
NODES=$KTC/nodes
EXTRA_NODE_LABEL=ktrace.dev/extra-node

# alive_in DIR NAME [EXE]: the PID in DIR/NAME.pid runs, and is still that
# program (executable EXE, default NAME): a stale pid file after a reboot must
# not make us signal a stranger.
alive_in() {
  local pid exe want=${3:-$2}
  pid=$(cat "$1/$2.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  case ${exe##*/} in "$want"|"$want (deleted)") return 0 ;; esac
  return 1
}
# alive NAME: the same for node 1's daemons in $RUN.
alive() { alive_in "$RUN" "$1"; }

# extra_nodes: the names of the extra nodes that have state in $NODES.
extra_nodes() {
  local d
  for d in "$NODES"/*/; do [ -d "$d" ] && basename "$d"; done
  return 0
}

# node_vars NAME: set N_* for extra node NAME. Everything that must not clash
# between nodes derives from its index I (file $NODES/NAME/index):
#   host veth ktrace<I>h 172.31.250.<4I+1>/30 <-> eth0 172.31.250.<4I+2> in
#   the node's netns, pod CIDR 10.89.<I>.0/24 on bridge ktrace<I> there, CNI
#   network ktrace<I>; cgroup root /NAME in every hierarchy.
node_vars() {
  N_NAME=$1
  N_DIR=$NODES/$1
  N_RUN=$N_DIR/run
  N_LOG=$LOG/$1
  N_SOCK=$N_RUN/containerd.sock
  N_NETNS=$N_RUN/netns
  N_CGROOT=$1
  N_IDX=$(cat "$N_DIR/index" 2>/dev/null || true)
  N_VETH='' N_BRIDGE='' N_CNI_NET='' N_HOST_ADDR='' N_IP='' N_POD_CIDR=''
  case $N_IDX in '' | *[!0-9]*) N_IDX=; return 0 ;; esac
  N_VETH=ktrace${N_IDX}h
  N_BRIDGE=ktrace$N_IDX
  N_CNI_NET=ktrace$N_IDX
  N_HOST_ADDR=172.31.250.$((4 * N_IDX + 1))
  N_IP=172.31.250.$((4 * N_IDX + 2))
  N_POD_CIDR=10.89.$N_IDX.0/24
}

# ctr_at RUNDIR ARGS...: ctr against the containerd whose socket is in RUNDIR
# (node 1: $RUN, extra node NAME: $NODES/NAME/run), namespace k8s.io.
ctr_at() { local d=$1; shift; ctr --address "$d/containerd.sock" -n k8s.io "$@"; }

# without_fds CMD...: exec CMD with no file descriptor open but 0, 1 and 2.
# A daemon must not keep a lock its starter held: `flock FILE make e2e`
# opens FILE as fd 3, and a cluster started under it would hold that lock
# for as long as it runs. Run in a subshell: it replaces the shell.
without_fds() {
  local fd
  for fd in /proc/self/fd/*; do
    fd=${fd##*/}
    [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null
  done
  exec "$@"
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

# import_image FILE [RUNDIR]: import a docker-archive tarball into the k8s.io
# namespace of the containerd of RUNDIR (default $RUN: node 1) and remember
# its size and mtime there, so up.sh skips it next time.
import_image() {
  local f key out d=${2:-$RUN} who=
  [ "$d" = "$RUN" ] || who=" into $(basename "$(dirname "$d")")"
  f=$(realpath "$1")
  key=$(stat -c '%n %s %Y' "$f")
  out=$(ctr_at "$d" images import "$f" 2>&1) || die "importing $f$who: $out"
  { grep -v "^$f " "$d/images.imported" 2>/dev/null || true; echo "$key"; } > "$d/images.imported.tmp"
  mv "$d/images.imported.tmp" "$d/images.imported"
  stamp "imported $f$who: $(echo "$out" | sed -n 's/^unpacking \([^ ]*\) .*/\1/p' | tr '\n' ' ')"
}

# imported_already FILE [RUNDIR]: FILE is unchanged since import_image took it.
imported_already() {
  grep -qxF "$(stat -c '%n %s %Y' "$(realpath "$1")")" "${2:-$RUN}/images.imported" 2>/dev/null
}

# running_extra_nodes: the extra nodes whose containerd runs (image targets).
running_extra_nodes() {
  local n
  for n in $(extra_nodes); do
    alive_in "$NODES/$n/run" containerd && echo "$n"
  done
  return 0
}
