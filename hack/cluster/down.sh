#!/usr/bin/env bash
# down.sh - stop the cluster up.sh started and remove every trace of it on
# the host, so the next up.sh starts clean. Safe when nothing is up.
#
# Extra nodes (add-node.sh) go first, through remove-node.sh --all --no-api.
# Processes are stopped by recorded PID only, never by name: the kubelet
# first (so it restarts nothing), then every container through containerd,
# containerd, the shims it left (found by their -address argument, which
# names our socket: containerd 1.6 writes no shim.pid), the control plane and
# etcd. Then: mounts under $KTC, the $BRIDGE bridge, the kubepods cgroups in
# every hierarchy, libcni cache entries of our network, the kubelet's
# /var/log/containers links, all state in $KTC (its logs/ stay until the next
# up.sh) and $REPO/.cluster/kubeconfig. The Kubernetes binary cache stays.
#
# No pod is deleted through the API first: all state is thrown away anyway,
# and that took most of the time of a teardown in research/cluster.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib.sh"
cluster_lock

# running PID: the process exists and is not a zombie (PID 1 here may be
# slow to reap what it inherits).
running() {
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "${st%% *}" != Z ]
}

# stop SECONDS NAME...: SIGTERM the recorded PIDs together, wait for them,
# SIGKILL whatever is left after SECONDS.
stop() {
  local secs=$1 name pids=() np left; shift
  for name in "$@"; do
    if alive "$name"; then
      pids+=("$name:$(cat "$RUN/$name.pid")")
      kill -TERM "${pids[-1]#*:}" 2>/dev/null
    fi
    rm -f "$RUN/$name.pid"
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  for _ in $(seq $((secs * 10))); do
    left=0
    for np in "${pids[@]}"; do running "${np#*:}" && left=1; done
    [ $left = 0 ] && break
    sleep 0.1
  done
  for np in "${pids[@]}"; do
    if running "${np#*:}"; then
      stamp "${np%%:*} (pid ${np#*:}) ignored SIGTERM for ${secs}s: SIGKILL"
      kill -KILL "${np#*:}" 2>/dev/null
    fi
    stamp "stopped ${np%%:*} (pid ${np#*:})"
  done
}

# wait_gone SECONDS PID...: wait until the PIDs are gone.
wait_gone() {
  local secs=$1 p left; shift
  for _ in $(seq $((secs * 10))); do
    left=0
    for p in "$@"; do running "$p" && left=1; done
    [ $left = 0 ] && return 0
    sleep 0.1
  done
  return 1
}

# Processes in the kubepods cgroups (any hierarchy), i.e. in pods of ours:
# up.sh refuses to start while another kubelet's pods are there.
kubepods_pids() {
  local h
  for h in /sys/fs/cgroup/*/kubepods; do
    [ -d "$h" ] && find "$h" -name cgroup.procs -exec cat {} + 2>/dev/null
  done | sort -un
}

[ -d "$KTC" ] || { rm -f "$CLUSTER_DIR/kubeconfig"; stamp "nothing to stop"; exit 0; }

# 0. extra nodes: their daemons, shims, netns, veths and cgroup roots are
#    outside what the steps below know. No API calls: etcd goes anyway.
if [ -n "$(extra_nodes)" ]; then
  "$HERE/remove-node.sh" --no-api --all || stamp "WARNING: removing the extra nodes failed (see above)"
fi

# 1. the kubelet, so it does not restart what we kill next
stop 15 kubelet

# 2. every container and sandbox, through containerd (SIGKILL, all at once)
if alive containerd; then
  mapfile -t tasks < <(ctr_k8s tasks ls -q 2>/dev/null)
  for t in "${tasks[@]}"; do ctr_k8s tasks kill -a -s SIGKILL "$t" >/dev/null 2>&1 & done
  wait
  [ ${#tasks[@]} -eq 0 ] || stamp "killed ${#tasks[@]} container task(s) through containerd"
fi
stop 15 containerd

# 3. shims of our containerd: found by "-address <our socket>" in their
#    command line (another containerd's shims carry another address).
#    Killed, they leave their socket in /run/containerd/s, named
#    sha256(<containerd address>/<namespace>/<id>) by containerd 1.6.
shims=() sockets=()
for p in /proc/[0-9]*; do
  cmd=$(tr '\0' ' ' 2>/dev/null < "$p/cmdline") || continue
  case $cmd in
    *containerd-shim*" -address $CTR_SOCK "*)
      shims+=("${p#/proc/}")
      ns=$(sed -n 's/.* -namespace \([^ ]*\) .*/\1/p' <<< "$cmd")
      id=$(sed -n 's/.* -id \([^ ]*\) .*/\1/p' <<< "$cmd")
      sockets+=("/run/containerd/s/$(printf '%s' "$CTR_SOCK/$ns/$id" | sha256sum | cut -d' ' -f1)")
      ;;
  esac
done
if [ ${#shims[@]} -gt 0 ]; then
  kill -KILL "${shims[@]}" 2>/dev/null
  wait_gone 5 "${shims[@]}"
  rm -f "${sockets[@]}"
  stamp "killed ${#shims[@]} containerd shim(s) of $CTR_SOCK: ${shims[*]}"
fi
# Should a container process have outlived its shim (only if the kill above
# failed), it is still in our kubepods cgroups: kill it there.
mapfile -t left < <(kubepods_pids)
if [ ${#left[@]} -gt 0 ]; then
  stamp "killing ${#left[@]} leftover pod process(es) in kubepods cgroups: ${left[*]}"
  kill -KILL "${left[@]}" 2>/dev/null
  wait_gone 5 "${left[@]}"
fi

# 4. control plane, then etcd: the apiserver's last act is removing itself
#    from the kubernetes Service endpoints; with etcd gone that hook waits
#    20 s before it gives up
stop 20 kube-scheduler kube-controller-manager kube-apiserver
stop 15 etcd

# 5. mounts under $KTC, deepest first (overlay rootfs, pod netns, volume
#    tmpfs); repeat for stacked mounts
for _ in 1 2 3; do
  mounts=$(awk -v p="$KTC/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -ru)
  [ -n "$mounts" ] || break
  while read -r m; do
    m=$(printf '%b' "$m") # mountinfo escapes blanks as \040
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  done <<< "$mounts"
  stamp "unmounted $(echo "$mounts" | wc -l) mount(s) under $KTC"
done

# 6. network: the bridge (veths went with their pod netns)
if ip link show "$BRIDGE" >/dev/null 2>&1; then
  ip link del "$BRIDGE" && stamp "deleted bridge $BRIDGE"
fi

# 7. kubepods cgroups in every hierarchy (v1 controllers, name=systemd,
#    unified), depth first; rmdir only removes empty ones
for _ in 1 2 3 4 5; do
  busy=0
  for h in /sys/fs/cgroup/*/kubepods; do
    [ -d "$h" ] || continue
    find "$h" -depth -type d -exec rmdir {} + 2>/dev/null
    [ -d "$h" ] && busy=1
  done
  [ $busy = 0 ] && break
  sleep 0.2
done
[ "$busy" = 0 ] || stamp "WARNING: could not remove $(echo /sys/fs/cgroup/*/kubepods)"

# 8. host paths containerd 1.6 and the kubelet use whatever we configure
for f in /var/lib/cni/results/"$CNI_NET"-*; do
  [ -e "$f" ] || continue
  id=${f#/var/lib/cni/results/"$CNI_NET"-}; id=${id%-*}
  rm -f "$f" "/var/lib/cni/results/cni-loopback-$id-lo"
done
for f in /var/log/containers/*.log; do
  [ -L "$f" ] && case $(readlink "$f") in "$KTC"/*) rm -f "$f" ;; esac
done
rm -f /var/lib/kubelet/device-plugins/kubelet.sock # hard-wired, whatever --root-dir says
rmdir /var/lib/kubelet/device-plugins /var/lib/kubelet /var/log/containers /run/containerd/s /run/containerd/runc/k8s.io /run/containerd/runc \
  /run/containerd /var/lib/cni/results /var/lib/cni 2>/dev/null

# 9. state (never across a mount that is still there)
if awk -v p="$KTC/" 'index($5, p) == 1 {found = 1} END {exit !found}' /proc/self/mountinfo; then
  die "mounts remain under $KTC, state not wiped: $(awk -v p="$KTC/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | head -3)"
fi
find "$KTC" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf --one-file-system {} +
rm -f "$CLUSTER_DIR/kubeconfig"
stamp "cluster down, state wiped (last logs in $LOG)"
