#!/usr/bin/env bash
# add-node.sh - join an extra node (own kubelet, own containerd) to the
# cluster up.sh started, on the same machine, or confirm it is up.
#
#   hack/cluster/add-node.sh [NAME]       # default ktrace-node2
#   hack/cluster/add-node.sh ktrace-node3 # a third one
#   hack/cluster/remove-node.sh NAME | --all
#
# The node runs in namespaces of its own, entered by one init process:
# network (persisted on $NODES/NAME/run/netns, joined to the host by a veth
# pair), mount and UTS (hostname NAME) and, unless KTRACE_NODE_PIDNS=0, PID:
# the init is PID 1 there and a hostPID pod on this node sees only this
# node's processes, as on a real machine (node 1's hostPID pods, in the host
# PID namespace, still see everything). Its kubelet has its own cgroupRoot
# (/NAME in every hierarchy), podLogsDir, --root-dir and --cert-dir; its
# containerd its own root/state/socket; CNI its own bridge and subnet, routed
# from the host. The paths containerd 1.6 and the kubelet hard-wire
# (/run/containerd, /var/lib/cni, /var/log/containers,
# /var/lib/kubelet/device-plugins) are bind mounts of dirs under
# $NODES/NAME/host in the node's mount namespace, so nodes never share them.
# Names and addresses derive from the node's index (lib.sh node_vars).
#
# Every image tarball in $IMAGES_DIR is imported into the node's containerd
# (load.sh and up.sh import into every running node later). The node is
# labelled ktrace.dev/extra-node=true and, by default, tainted
# ktrace.dev/extra-node=true:NoSchedule so that other users' unpinned pods
# stay on node 1: pods pinned with nodeName run regardless (the kubelet
# enforces only NoExecute taints), as does the plugin's helper (it tolerates
# everything). KTRACE_NODE_TAINT='' for no taint, or another key=value:Effect.
#
# Idempotent: a healthy node is left alone (imports only changed tarballs);
# state of an unhealthy one is removed (remove-node.sh) and the node started
# afresh. Returns when the node is Ready. PIDs in $NODES/NAME/run/*.pid
# (unshare, init, containerd, kubelet: host PIDs), logs in $LOG/NAME/.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib.sh"

[ $# -le 1 ] || { echo "usage: $0 [NAME]   (default ktrace-node2)" >&2; exit 2; }
NAME=${1:-ktrace-node2}
PIDNS=${KTRACE_NODE_PIDNS:-1}
TAINT=${KTRACE_NODE_TAINT-$EXTRA_NODE_LABEL=true:NoSchedule}
if ! [[ $NAME =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || [ ${#NAME} -gt 40 ]; then
  die "node name '$NAME': lower-case letters, digits and '-', at most 40 characters"
fi
case $NAME in kubepods | system | user | init.scope) die "node name '$NAME' clashes with a cgroup name" ;; esac
node_vars "$NAME"
# containerd's unix sockets must fit in 108 bytes
[ ${#N_SOCK} -le 90 ] || die "socket path $N_SOCK.ttrpc is too long: shorten KTC or the node name"
cluster_lock

KUBECTL=("$K8S_BIN/kubectl" --kubeconfig "$KTC/admin.kubeconfig" --request-timeout=10s)
NODE1=$(cut -d' ' -f1 "$RUN/node" 2>/dev/null || true)
if [ -z "$NODE1" ] || ! alive kube-apiserver || ! "${KUBECTL[@]}" get --raw /readyz >/dev/null 2>&1; then
  die "the cluster is not up: run hack/cluster/up.sh (make cluster-up) first"
fi
[ "$NAME" != "$NODE1" ] || die "$NAME is node 1's name"
APISERVER=$(sed -n 's/^ *server: *//p' "$KTC/admin.kubeconfig" | sed -n 1p)

innet() { nsenter --net="$N_NETNS" "$@"; }

# wait_for DESC SECONDS CMD...: poll CMD every 0.1 s until it succeeds.
wait_for() {
  local desc=$1 secs=$2 end; shift 2
  end=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || die "timed out after ${secs}s waiting for $desc (logs: $N_LOG)"
    sleep 0.1
  done
  stamp "$NAME: ready: $desc"
}

# node_ready: Ready, and none of the taints the node lifecycle controller
# puts on a node that is not (yet) ready.
node_ready() {
  local out
  out=$("${KUBECTL[@]}" get node "$NAME" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status} {.spec.taints[*].key}' 2>/dev/null) || return 1
  case $out in "True "*) ;; *) return 1 ;; esac
  case $out in *node.kubernetes.io/*) return 1 ;; esac
}

node_healthy() {
  alive_in "$N_RUN" unshare && alive_in "$N_RUN" init pause &&
    alive_in "$N_RUN" containerd && alive_in "$N_RUN" kubelet &&
    [ "$(cat "$N_DIR/pidns" 2>/dev/null)" = "$PIDNS" ] &&
    ctr_at "$N_RUN" version >/dev/null 2>&1 &&
    innet curl -sf --max-time 2 http://127.0.0.1:10248/healthz >/dev/null 2>&1
}

import_images() {
  local f
  for f in "$IMAGES_DIR"/*.tar; do
    [ -e "$f" ] || continue
    imported_already "$f" "$N_RUN" || import_image "$f" "$N_RUN"
  done
  ctr_at "$N_RUN" images ls -q | grep -x ktrace.local/pause:v1 >/dev/null ||
    die "sandbox image ktrace.local/pause:v1 missing in $NAME after import (make image)"
}

# ---------------------------------------------------------------------------
# Already up? Anything else of that name (a dead daemon, a Node object
# without its kubelet, or deleted under a live one) is removed first.
# ---------------------------------------------------------------------------
if node_healthy && "${KUBECTL[@]}" get node "$NAME" >/dev/null 2>&1; then
  import_images
  node_ready || wait_for "node $NAME Ready" 30 node_ready
  stamp "$NAME: already up (index $N_IDX, node IP $N_IP, pods $N_POD_CIDR)"
  exit 0
fi
if [ -d "$N_DIR" ] || "${KUBECTL[@]}" get node "$NAME" >/dev/null 2>&1; then
  stamp "$NAME: state or a Node object left, but the node is not healthy (or has another KTRACE_NODE_PIDNS): removing it first"
  "$HERE/remove-node.sh" "$NAME" || die "removing the old $NAME failed"
fi
[ -f "$IMAGES_DIR/pause.tar" ] || die "no $IMAGES_DIR/pause.tar: make image"

# The index: the smallest free one from 2 up (node 1 is the host).
used=$(cat "$NODES"/*/index 2>/dev/null || true)
idx=
for i in $(seq 2 62); do
  grep -qx "$i" <<< "$used" && continue
  ip link show "ktrace${i}h" >/dev/null 2>&1 && continue # someone else's leftover
  idx=$i && break
done
[ -n "$idx" ] || die "no free node index (2..62)"
mkdir -p "$N_DIR"
echo "$idx" > "$N_DIR/index" # first, so that remove-node.sh can undo a partial start
echo "$PIDNS" > "$N_DIR/pidns"
node_vars "$NAME"
for h in /sys/fs/cgroup/*/"$N_CGROOT"; do
  [ -d "$h" ] && [ -n "$(find "$h" -name cgroup.procs -exec cat {} + 2>/dev/null | head -1)" ] &&
    die "cgroup $h exists and holds processes: not ours, choose another node name"
done
mkdir -p "$N_RUN" "$N_DIR/pki" "$N_DIR/conf" "$N_DIR/cni/net.d" "$N_DIR/cni/ipam" "$N_DIR/pod-logs" "$N_DIR/host"
rm -rf "$N_LOG"
mkdir -p "$N_LOG"
pidns_desc="the host's"
[ "$PIDNS" = 1 ] && pidns_desc="its own"
stamp "$NAME: adding node $idx: node IP $N_IP, pods $N_POD_CIDR, cgroup root /$N_CGROOT, PID namespace: $pidns_desc"

# ---------------------------------------------------------------------------
# Client certificate system:node:NAME from the cluster CA (ECDSA P-256 as in
# up.sh; the CA serial file stays in the node's dir), self-contained kubeconfig
# ---------------------------------------------------------------------------
P=$N_DIR/pki
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$P/kubelet.key" 2>/dev/null
printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
  "extendedKeyUsage=clientAuth" > "$P/kubelet.ext"
openssl req -new -config "$PKI/openssl.cnf" -key "$P/kubelet.key" -subj "/O=system:nodes/CN=system:node:$NAME" 2>/dev/null |
  openssl x509 -req -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAserial "$P/ca.srl" -CAcreateserial -days 365 \
    -extfile "$P/kubelet.ext" -out "$P/kubelet.crt" 2>/dev/null
[ -s "$P/kubelet.crt" ] || die "signing the client certificate of $NAME failed"
cat > "$N_DIR/kubelet.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ktrace
  cluster:
    server: $APISERVER
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: system:node:$NAME
  user:
    client-certificate-data: $(base64 -w0 "$P/kubelet.crt")
    client-key-data: $(base64 -w0 "$P/kubelet.key")
contexts:
- name: ktrace
  context: {cluster: ktrace, user: "system:node:$NAME"}
current-context: ktrace
EOF
chmod 600 "$N_DIR/kubelet.kubeconfig"

# ---------------------------------------------------------------------------
# Network namespace, veth pair, routes. Forwarding is switched on inside the
# node's netns only (its pods <-> host); the host's sysctls stay untouched.
# lo must be up: the kubelet's healthz and containerd's CRI streaming server
# (exec/attach/port-forward) listen on 127.0.0.1 there.
# ---------------------------------------------------------------------------
touch "$N_NETNS"
unshare --net="$N_NETNS" true
ip link add "$N_VETH" type veth peer name "ktrace${idx}p"
ip link set "ktrace${idx}p" netns "$N_NETNS"
ip addr add "$N_HOST_ADDR/30" dev "$N_VETH"
ip link set "$N_VETH" up
innet ip link set lo up
innet ip link set "ktrace${idx}p" name eth0
innet ip addr add "$N_IP/30" dev eth0
innet ip link set eth0 up
innet ip route add default via "$N_HOST_ADDR"
innet sysctl -qw net.ipv4.ip_forward=1
ip route add "$N_POD_CIDR" via "$N_IP" dev "$N_VETH"
wait_for "apiserver reachable from the node's netns" 10 innet curl -sk --max-time 2 -o /dev/null "$APISERVER/version"

# ---------------------------------------------------------------------------
# Cgroup root /NAME in every hierarchy: the kubelet refuses a cgroupRoot that
# does not exist, and two kubelets on one root kill each other's pods (each
# treats pod cgroups it does not know as orphans). A new v1 cpuset cgroup
# starts without cpus/mems: copy the root's.
# ---------------------------------------------------------------------------
for h in /sys/fs/cgroup/*/; do
  [ -e "$h/cgroup.procs" ] && mkdir -p "$h$N_CGROOT"
done
if [ -d "/sys/fs/cgroup/cpuset/$N_CGROOT" ]; then
  for f in cpuset.cpus cpuset.mems; do
    [ -n "$(cat "/sys/fs/cgroup/cpuset/$N_CGROOT/$f")" ] || cat "/sys/fs/cgroup/cpuset/$f" > "/sys/fs/cgroup/cpuset/$N_CGROOT/$f"
  done
fi
stamp "$NAME: pki, netns $N_NETNS (veth $N_VETH), routes, cgroups ready"

# ---------------------------------------------------------------------------
# Configuration: as up.sh's for node 1 (keep them in step), with this node's
# paths, addresses, CNI network, cgroupRoot and podLogsDir.
# ---------------------------------------------------------------------------
cat > "$N_DIR/cni/net.d/10-$N_CNI_NET.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "$N_CNI_NET",
  "plugins": [
    { "type": "bridge", "bridge": "$N_BRIDGE", "isGateway": true, "ipMasq": false,
      "hairpinMode": true,
      "ipam": { "type": "host-local", "dataDir": "$N_DIR/cni/ipam",
                "ranges": [[{ "subnet": "$N_POD_CIDR" }]],
                "routes": [{ "dst": "0.0.0.0/0" }] } },
    { "type": "loopback" }
  ]
}
EOF
cat > "$N_DIR/conf/containerd.toml" <<EOF
version = 2
root = "$N_DIR/containerd/root"
state = "$N_DIR/containerd/state"
[grpc]
  address = "$N_SOCK"
[ttrpc]
  address = "$N_SOCK.ttrpc"
[debug]
  address = "$N_RUN/containerd-debug.sock"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$N_DIR/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "ktrace.local/pause:v1"
  enable_unprivileged_ports = false
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$N_DIR/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$N_DIR/cni/net.d"
EOF
# cgroupRoot and podLogsDir MUST differ from node 1's: each kubelet deletes
# pod cgroups and pod log dirs it does not know under its own.
cat > "$N_DIR/conf/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$N_CGROOT
podLogsDir: $N_DIR/pod-logs
containerRuntimeEndpoint: unix://$N_SOCK
address: $N_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization:
  mode: Webhook
failSwapOn: false
resolvConf: /etc/resolv.conf
serializeImagePulls: false
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
podPidsLimit: 4096
EOF
if [ -n "$TAINT" ]; then
  [[ $TAINT =~ ^([^=:]+)(=([^:]*))?:(NoSchedule|PreferNoSchedule|NoExecute)$ ]] ||
    die "KTRACE_NODE_TAINT='$TAINT': want key[=value]:Effect"
  printf 'registerWithTaints:\n- {key: "%s", value: "%s", effect: "%s"}\n' \
    "${BASH_REMATCH[1]}" "${BASH_REMATCH[3]}" "${BASH_REMATCH[4]}" >> "$N_DIR/conf/kubelet.yaml"
fi

# The node's init: PID 1 of its PID namespace (a zombie reaper: the pause
# program from the sandbox image), the parent of its containerd and kubelet.
# Runs inside the node's mount namespace (private propagation), where it
# drops the copies of mounts under $KTC (node 1's pod rootfs and netns, other
# nodes' netns files: they would stay pinned there) and binds the hard-wired
# host paths to the node's own dirs (mount points it has to create on the
# host are listed in $NODES/host-dirs for remove-node.sh). The kubelet starts once the images are
# in (file run/start-kubelet); without them within 2 min init gives up.
layer=$(tar -xOf "$IMAGES_DIR/pause.tar" manifest.json | sed -n 's/.*"Layers":\["\([^"]*\)".*/\1/p')
case $layer in *gz) z=-z ;; *) z= ;; esac
tar -xOf "$IMAGES_DIR/pause.tar" "$layer" | tar -xO $z pause > "$N_DIR/pause" || die "no /pause in $IMAGES_DIR/pause.tar"
chmod 755 "$N_DIR/pause"
cat > "$N_DIR/conf/init.sh" <<EOF
#!/bin/sh
# init of extra node $NAME (written by add-node.sh)
set -u
hostname "$NAME" || exit 1
awk -v p="$KTC/" 'index(\$5, p) == 1 {print \$5}' /proc/self/mountinfo | sort -ru |
  while read -r m; do umount -l "\$(printf '%b' "\$m")"; done
for d in /run/containerd /var/lib/cni /var/log/containers /var/lib/kubelet/device-plugins; do
  p=\$d
  while [ ! -d "\$p" ]; do echo "\$p" >> "$NODES/host-dirs"; p=\$(dirname "\$p"); done
  mkdir -p "\$d" "$N_DIR/host\$d" && mount --bind "$N_DIR/host\$d" "\$d" || exit 1
done
/usr/bin/containerd --config "$N_DIR/conf/containerd.toml" > "$N_LOG/containerd.log" 2>&1 < /dev/null &
i=0
until [ -e "$N_RUN/start-kubelet" ]; do
  i=\$((i + 1)); [ \$i -le 1200 ] || { echo "no $N_RUN/start-kubelet after 2 min" >&2; exit 1; }
  sleep 0.1
done
"$K8S_BIN/kubelet" --config="$N_DIR/conf/kubelet.yaml" --kubeconfig="$N_DIR/kubelet.kubeconfig" \\
  --root-dir="$N_DIR/kubelet" --cert-dir="$N_DIR/kubelet/pki" --hostname-override="$NAME" \\
  --node-ip="$N_IP" --node-labels="$EXTRA_NODE_LABEL=true" --v=1 > "$N_LOG/kubelet.log" 2>&1 < /dev/null &
exec "$N_DIR/pause"
EOF
chmod 755 "$N_DIR/conf/init.sh"

# ---------------------------------------------------------------------------
# Start: unshare (host side, waits for init; --kill-child: init dies with it)
# -> init in the new namespaces -> containerd; images; kubelet. The daemons'
# host PIDs are read from init's children.
# ---------------------------------------------------------------------------
ns=(--mount --propagation private --uts --fork --kill-child)
[ "$PIDNS" = 1 ] && ns+=(--pid --mount-proc)
rm -f "$N_RUN/start-kubelet"
(without_fds setsid nsenter --net="$N_NETNS" unshare "${ns[@]}" "$N_DIR/conf/init.sh") \
  >"$N_LOG/init.log" 2>&1 </dev/null &
echo $! > "$N_RUN/unshare.pid"
init=
for _ in $(seq 50); do
  init=$(cat /proc/"$(cat "$N_RUN/unshare.pid")"/task/*/children 2>/dev/null | awk '{print $1}') || true
  [ -n "$init" ] && break
  sleep 0.1
done
[ -n "$init" ] || { cat "$N_LOG/init.log" >&2; die "$NAME: init did not start"; }
echo "$init" > "$N_RUN/init.pid"
stamp "$NAME: started unshare (pid $(cat "$N_RUN/unshare.pid")), init (pid $init)"

# child NAME: record the host PID of init's child NAME in run/NAME.pid.
child() {
  local c
  rm -f "$N_RUN/$1.pid"
  for _ in $(seq 150); do
    # shellcheck disable=SC2013 # one line of PIDs
    for c in $(cat /proc/"$init"/task/*/children 2>/dev/null); do
      [ "$(cat "/proc/$c/comm" 2>/dev/null)" = "$1" ] && echo "$c" > "$N_RUN/$1.pid"
    done
    alive_in "$N_RUN" "$1" && { stamp "$NAME: started $1 (pid $(cat "$N_RUN/$1.pid"))"; return; }
    [ -d "/proc/$init" ] || break
    sleep 0.1
  done
  tail -5 "$N_LOG/init.log" "$N_LOG/$1.log" >&2 2>/dev/null
  die "$NAME: $1 did not start (logs: $N_LOG; clean up: hack/cluster/remove-node.sh $NAME)"
}
child containerd
wait_for containerd 30 ctr_at "$N_RUN" version
import_images
touch "$N_RUN/start-kubelet"
child kubelet
wait_for "node $NAME Ready" 120 node_ready
alive_in "$N_RUN" init pause || die "$NAME: init is not the pause program (pid $init)"
stamp "$NAME: node up: $N_IP, pods $N_POD_CIDR, state $N_DIR, logs $N_LOG"
