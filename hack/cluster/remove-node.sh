#!/usr/bin/env bash
# remove-node.sh - remove extra nodes added by add-node.sh and every trace of
# them on the host and in the API, leaving node 1 and other nodes alone.
#
#   hack/cluster/remove-node.sh [NAME...]   # default ktrace-node2
#   hack/cluster/remove-node.sh --all       # every extra node
#   --no-api: skip the API steps (down.sh: the cluster's state goes anyway)
#
# Order (each step by recorded PID or by the node's own names, never by
# process name): NoExecute taint, so no DaemonSet puts pods back, and the
# node's pods deleted through the API while its kubelet runs (it tears them
# down properly) -> kubelet stopped -> leftover tasks killed through its
# containerd -> containerd stopped -> shims of ITS socket killed (containerd
# 1.6 leaves them; found by their -address argument) -> init stopped (with a
# PID namespace the kernel kills whatever is left in it) and unshare ->
# processes left in its cgroup root killed -> Node object deleted (now no
# controller recreates pods for it), then pod objects still bound to it
# force-deleted (pods tolerating every taint: their containers are gone) ->
# mounts under its dir (netns file) -> veth (its route goes with it; the
# bridge went with the netns) -> cgroup root rmdir'ed depth first -> its
# libcni cache entries -> its state dir -> its events (last: the node
# lifecycle controller adds one after the deletion). Logs stay in $LOG/NAME.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib.sh"

API=1 ALL=0 names=()
for a in "$@"; do
  case $a in
    --no-api) API=0 ;;
    --all) ALL=1 ;;
    -*) echo "usage: $0 [--no-api] [NAME... | --all]" >&2; exit 2 ;;
    *) names+=("$a") ;;
  esac
done
cluster_lock
KUBECTL=("$K8S_BIN/kubectl" --kubeconfig "$KTC/admin.kubeconfig" --request-timeout=5s)
NODE1=$(cut -d' ' -f1 "$RUN/node" 2>/dev/null || true)
if [ $API = 1 ] && ! "${KUBECTL[@]}" get --raw /readyz >/dev/null 2>&1; then
  stamp "apiserver not reachable: skipping the API steps"
  API=0
fi
k() { "${KUBECTL[@]}" "$@"; }
if [ $ALL = 1 ]; then
  mapfile -t names < <({
    extra_nodes
    [ $API = 0 ] || k get nodes -l "$EXTRA_NODE_LABEL=true" -o name | sed 's|^node/||'
  } | sort -u)
elif [ ${#names[@]} -eq 0 ]; then
  names=(ktrace-node2)
fi

running() { # running PID: exists and is not a zombie
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "${st%% *}" != Z ]
}
wait_gone() { # wait_gone SECONDS PID...
  local secs=$1 p left; shift
  for _ in $(seq $((secs * 10))); do
    left=0
    for p in "$@"; do running "$p" && left=1; done
    [ $left = 0 ] && return 0
    sleep 0.1
  done
  return 1
}
# stop SECONDS NAME[:EXE]...: SIGTERM the node's recorded PIDs, wait,
# SIGKILL whatever is left.
stop() {
  local secs=$1 ne name pids=() np; shift
  for ne in "$@"; do
    name=${ne%%:*}
    if alive_in "$N_RUN" "$name" "${ne#*:}"; then
      pids+=("$name:$(cat "$N_RUN/$name.pid")")
      kill -TERM "${pids[-1]#*:}" 2>/dev/null
      rm -f "$N_RUN/$name.pid"
    fi
  done
  for ne in "$@"; do rm -f "$N_RUN/${ne%%:*}.pid"; done
  [ ${#pids[@]} -gt 0 ] || return 0
  local only=()
  for np in "${pids[@]}"; do only+=("${np#*:}"); done
  wait_gone "$secs" "${only[@]}"
  for np in "${pids[@]}"; do
    if running "${np#*:}"; then
      stamp "$N_NAME: ${np%%:*} (pid ${np#*:}) ignored SIGTERM for ${secs}s: SIGKILL"
      kill -KILL "${np#*:}" 2>/dev/null
      wait_gone 5 "${np#*:}"
    fi
    stamp "$N_NAME: stopped ${np%%:*} (pid ${np#*:})"
  done
}
cgroup_pids() { # processes in the node's cgroup root, any hierarchy
  local h
  for h in /sys/fs/cgroup/*/"$N_CGROOT"; do
    [ -d "$h" ] && find "$h" -name cgroup.procs -exec cat {} + 2>/dev/null
  done | sort -un
}

remove() {
  node_vars "$1"
  local mine=0 tasks t shims=() procs p left mounts m busy h f id
  [ -d "$N_DIR" ] && mine=1
  if [ -n "$NODE1" ] && [ "$N_NAME" = "$NODE1" ]; then
    stamp "refusing to remove $N_NAME: it is node 1 (down.sh stops that one)"; return 1
  fi
  if [ $mine = 0 ]; then
    # no state here: only a Node object labelled as ours may go (with its
    # pods and events; host steps find nothing of it or only touch its own
    # names: socket, empty cgroup dirs)
    if [ $API = 0 ] || [ "$(k get node "$N_NAME" -o jsonpath="{.metadata.labels.${EXTRA_NODE_LABEL//./\\.}}" 2>/dev/null)" != true ]; then
      [ $API = 1 ] && k get node "$N_NAME" >/dev/null 2>&1 &&
        { stamp "refusing to remove $N_NAME: not an extra node (no label $EXTRA_NODE_LABEL=true)"; return 1; }
      stamp "$N_NAME: nothing to remove"; return 0
    fi
  fi
  stamp "$N_NAME: removing (index ${N_IDX:-?})"

  # 1. the node's pods, through the API, while its kubelet still runs
  if [ $API = 1 ] && alive_in "$N_RUN" kubelet && k get node "$N_NAME" >/dev/null 2>&1; then
    k taint node "$N_NAME" ktrace.dev/removing=true:NoExecute --overwrite >/dev/null
    if [ -n "$(k get pods -A --field-selector "spec.nodeName=$N_NAME" -o name 2>/dev/null)" ]; then
      "$K8S_BIN/kubectl" --kubeconfig "$KTC/admin.kubeconfig" delete pods -A \
        --field-selector "spec.nodeName=$N_NAME" --grace-period=1 --wait=true --timeout=60s >/dev/null 2>&1 ||
        stamp "$N_NAME: pod deletion did not finish; containerd cleanup follows"
      stamp "$N_NAME: tainted, its pods deleted through the API"
    fi
  fi
  # 2. kubelet, so it restarts nothing
  stop 15 kubelet
  # 3. leftover tasks through its containerd, all at once (CRI deletes them)
  if alive_in "$N_RUN" containerd; then
    mapfile -t tasks < <(ctr_at "$N_RUN" tasks ls -q 2>/dev/null)
    for t in "${tasks[@]}"; do ctr_at "$N_RUN" tasks kill -a -s SIGKILL "$t" >/dev/null 2>&1 & done
    wait
    [ ${#tasks[@]} -eq 0 ] || stamp "$N_NAME: killed ${#tasks[@]} task(s) through its containerd"
  fi
  # 4. containerd
  stop 15 containerd
  # 5. shims of its containerd: an argument is exactly its socket
  #    ("-address <socket>"; node 1's and other nodes' carry theirs)
  mapfile -t procs < <(grep -lzxF -f <(printf '%s\n' "$N_SOCK") /proc/[0-9]*/cmdline 2>/dev/null)
  for p in "${procs[@]}"; do
    p=${p#/proc/}; p=${p%/cmdline}
    case $(readlink "/proc/$p/exe" 2>/dev/null) in */containerd-shim*) shims+=("$p") ;; esac
  done
  if [ ${#shims[@]} -gt 0 ]; then
    kill -KILL "${shims[@]}" 2>/dev/null
    wait_gone 5 "${shims[@]}"
    stamp "$N_NAME: killed ${#shims[@]} shim(s) of $N_SOCK: ${shims[*]}"
  fi
  # 6. init (PID 1 of its PID namespace: the kernel kills the rest; still
  #    the shell if the start failed early) and unshare, which exits with it
  stop 10 init:pause init:dash unshare
  # 7. anything still in its cgroup root belongs to its pods (only if a kill
  #    above failed, or without a PID namespace)
  left=()
  [ $mine = 1 ] && mapfile -t left < <(cgroup_pids)
  if [ ${#left[@]} -gt 0 ]; then
    stamp "$N_NAME: killing ${#left[@]} process(es) left in cgroup /$N_CGROOT: ${left[*]}"
    kill -KILL "${left[@]}" 2>/dev/null
    wait_gone 5 "${left[@]}"
  fi

  # 8. the Node object, then pod objects still bound to it (its events go
  #    last: the node lifecycle controller adds one about the deletion)
  local deleted_at=0
  if [ $API = 1 ]; then
    if k get node "$N_NAME" >/dev/null 2>&1; then
      k delete node "$N_NAME" --wait=false >/dev/null && deleted_at=$SECONDS && stamp "$N_NAME: Node object deleted"
    fi
    mapfile -t left < <(k get pods -A --field-selector "spec.nodeName=$N_NAME" \
      -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name}{"\n"}{end}' 2>/dev/null)
    if [ ${#left[@]} -gt 0 ]; then
      k delete pods -A --field-selector "spec.nodeName=$N_NAME" --force --grace-period=0 >/dev/null 2>&1
      stamp "$N_NAME: force-deleted ${#left[@]} pod object(s) still bound to it: ${left[*]}"
    fi
  fi

  # 9. mounts under its dir in the host mount namespace (the netns file;
  #    everything else was in the node's own mount namespace)
  for _ in 1 2 3; do
    mounts=$(awk -v p="$N_DIR/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -ru)
    [ -n "$mounts" ] || break
    while read -r m; do
      m=$(printf '%b' "$m")
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
    done <<< "$mounts"
    stamp "$N_NAME: unmounted $(echo "$mounts" | wc -l) mount(s) under $N_DIR"
  done
  # 10. network: the veth pair (and the host route through it); the bridge
  #     lived in the netns, gone with its last process and mount
  #     (the kernel deletes the pair itself when it destroys the netns, which
  #     it does asynchronously: either may come first)
  if [ -n "$N_VETH" ]; then
    ip link del "$N_VETH" 2>/dev/null && stamp "$N_NAME: deleted veth $N_VETH"
    for _ in $(seq 20); do ip link show "$N_VETH" >/dev/null 2>&1 || break; sleep 0.1; done
    ip link show "$N_VETH" >/dev/null 2>&1 && stamp "$N_NAME: WARNING: veth $N_VETH is still there"
    ip route show "$N_POD_CIDR" 2>/dev/null | grep . >/dev/null && ip route del "$N_POD_CIDR" 2>/dev/null
  fi
  # 11. its cgroup root in every hierarchy, depth first
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    busy=0
    for h in /sys/fs/cgroup/*/"$N_CGROOT"; do
      [ -d "$h" ] || continue
      find "$h" -depth -type d -exec rmdir {} + 2>/dev/null
      [ -d "$h" ] && busy=1
    done
    [ $busy = 0 ] && break
    sleep 0.2
  done
  [ $busy = 0 ] || stamp "$N_NAME: WARNING: could not remove $(echo /sys/fs/cgroup/*/"$N_CGROOT")"
  # 12. libcni cache entries of its network, should any be in the host's
  #     /var/lib/cni (its own are in its dir, bound over /var/lib/cni)
  if [ -n "$N_CNI_NET" ]; then
    for f in /var/lib/cni/results/"$N_CNI_NET"-*; do
      [ -e "$f" ] || continue
      id=${f#/var/lib/cni/results/"$N_CNI_NET"-}; id=${id%-*}
      rm -f "$f" "/var/lib/cni/results/cni-loopback-$id-lo"
    done
  fi
  # 13. state (never across a mount that is still there)
  if awk -v p="$N_DIR/" 'index($5, p) == 1 {found = 1} END {exit !found}' /proc/self/mountinfo; then
    stamp "$N_NAME: ERROR: mounts remain under $N_DIR, state kept"; return 1
  fi
  rm -rf --one-file-system "$N_DIR"
  # 14. its events (namespace default), once the controller's RemovingNode
  #     event is there (it notices the deletion within its 1 s period)
  if [ $API = 1 ]; then
    local sel="involvedObject.kind=Node,involvedObject.name=$N_NAME"
    if [ $deleted_at -gt 0 ]; then
      while [ $((SECONDS - deleted_at)) -lt 5 ] &&
        ! k get events -n default --field-selector "$sel,reason=RemovingNode" -o name 2>/dev/null | grep . >/dev/null; do
        sleep 0.2
      done
    fi
    k delete events -n default --field-selector "$sel" >/dev/null 2>&1
  fi
  mapfile -t procs < <(grep -lF -f <(printf '%s\n' "$N_DIR/") /proc/[0-9]*/cmdline 2>/dev/null)
  for p in "${procs[@]}"; do
    p=${p#/proc/}; p=${p%/cmdline}
    stamp "$N_NAME: WARNING: process $p still runs: $(tr '\0' ' ' 2>/dev/null < "/proc/$p/cmdline")"
  done
  stamp "$N_NAME: removed"
}

rc=0
for n in "${names[@]}"; do
  [[ $n =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || { stamp "not a node name: '$n'"; rc=1; continue; }
  remove "$n" || rc=1
done
# Host dirs the nodes' inits created as mount points for their bind mounts
# (listed in $NODES/host-dirs; the content is in the nodes' own dirs):
# removed, if empty, once no extra node is left whose mount namespace binds
# over them (rmdir would detach its mount there).
if [ -z "$(extra_nodes)" ]; then
  if [ -f "$NODES/host-dirs" ]; then
    sort -ru "$NODES/host-dirs" | while read -r d; do rmdir "$d" 2>/dev/null; done
    rm -f "$NODES/host-dirs"
  fi
  rmdir "$NODES" 2>/dev/null
fi
exit $rc
