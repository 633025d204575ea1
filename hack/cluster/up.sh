#!/usr/bin/env bash
# up.sh - start the single-node test cluster, or confirm it is up.
#
# Kubernetes $K8S_VERSION (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet; built by build.sh from the Go module proxy), etcd
# from Debian, containerd with its own config/root/socket under $KTC. No
# kube-proxy, no cluster DNS, no registry: images come from
# $REPO/bin/images/*.tar (go run ./hack/images), imported into containerd.
#
# Idempotent: a healthy cluster is left alone (returns in about a second,
# importing only tarballs that changed); anything else (state left over,
# a daemon dead) is torn down with down.sh and started from scratch.
# Returns when the node is Ready and untainted and the default
# ServiceAccount exists. Progress goes to stderr.
#
#   hack/cluster/up.sh
#   export KUBECONFIG=$REPO/.cluster/kubeconfig; $REPO/.cluster/bin/kubectl get pods
#
# Every daemon's PID is in $KTC/run/<name>.pid; logs in $KTC/logs/<name>.log.
# The settings below carry the fixes from research/cluster/FINDINGS.md.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib.sh"
cluster_lock

"$HERE/build.sh" all

NODE_NAME=${NODE_NAME:-$(hostname | tr '[:upper:]' '[:lower:]')}
# The kubelet rejects a loopback node IP, so the kubelet and the apiserver
# bind to the address of the interface holding the default route.
default_ip() {
  local dev
  # awk reads to the end rather than exit early: under pipefail an early exit
  # can kill the writer with SIGPIPE and fail the whole pipeline.
  dev=$(ip -4 route show default | awk '!d {for (i = 1; i < NF; i++) if ($i == "dev") {d = $(i + 1)}} END {print d}')
  [ -n "$dev" ] && ip -4 -o addr show dev "$dev" scope global | awk '!a {split($4, f, "/"); a = f[1]} END {print a}'
}
NODE_IP=${NODE_IP:-$(default_ip)}
[ -n "$NODE_IP" ] || die "no default route to take the node IP from: set NODE_IP"
SERVICE_CIDR=${SERVICE_CIDR:-10.96.0.0/16}
POD_CIDR=${POD_CIDR:-10.88.0.0/16}
ETCD_BIN=${ETCD_BIN:-/usr/bin/etcd}
KUBECTL=("$K8S_BIN/kubectl" --kubeconfig "$KTC/admin.kubeconfig")
PORTS="2379 2380 2381 6443 10248 10250 10257 10259"

# healthy: every daemon we recorded runs and answers, for this node name/IP.
healthy() {
  local c
  for c in $COMPONENTS; do alive "$c" || return 1; done
  [ "$(cat "$RUN/node" 2>/dev/null)" = "$NODE_NAME $NODE_IP" ] || return 1
  curl -sf --max-time 2 http://127.0.0.1:2381/health >/dev/null || return 1
  curl -sf --max-time 2 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://$NODE_IP:6443/readyz" >/dev/null || return 1
  curl -sf --max-time 2 http://127.0.0.1:10248/healthz >/dev/null || return 1
  ctr_k8s version >/dev/null 2>&1
}

# start NAME CMD...: run a daemon in its own session, log to $LOG/NAME.log,
# record its PID. setsid does not fork here (the background job is not a
# process group leader), so $! is the daemon itself; checked below.
start() {
  local name=$1 pid; shift
  (without_fds setsid "$@") >"$LOG/$name.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" > "$RUN/$name.pid"
  for _ in $(seq 40); do alive "$name" && break; sleep 0.05; done
  alive "$name" || {
    tail -5 "$LOG/$name.log" >&2
    die "$name did not start (pid $pid; $LOG/$name.log)"
  }
  stamp "started $name (pid $pid)"
}

# wait_for DESC SECONDS CMD...: poll CMD every 0.1 s until it succeeds.
wait_for() {
  local desc=$1 secs=$2 end; shift 2
  end=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || die "timed out after ${secs}s waiting for $desc (logs: $LOG)"
    sleep 0.1
  done
  stamp "ready: $desc"
}

node_usable() {
  local out
  out=$("${KUBECTL[@]}" get node "$NODE_NAME" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status} {.spec.taints}' 2>/dev/null) || return 1
  [ "$out" = "True " ]
}

# Into node 1 and every running extra node (add-node.sh): a tarball rebuilt
# under the same tag must not leave a node on the old image.
import_images() {
  local f n nodes
  nodes=$(running_extra_nodes)
  for f in "$IMAGES_DIR"/*.tar; do
    [ -e "$f" ] || continue
    imported_already "$f" || import_image "$f"
    for n in $nodes; do
      imported_already "$f" "$NODES/$n/run" || import_image "$f" "$NODES/$n/run"
    done
  done
  return 0
}

publish_kubeconfig() {
  mkdir -p "$CLUSTER_DIR/bin"
  cp "$KTC/admin.kubeconfig" "$CLUSTER_DIR/kubeconfig.tmp"
  mv "$CLUSTER_DIR/kubeconfig.tmp" "$CLUSTER_DIR/kubeconfig"
  if ! cmp -s "$K8S_BIN/kubectl" "$CLUSTER_DIR/bin/kubectl"; then
    cp "$K8S_BIN/kubectl" "$CLUSTER_DIR/bin/kubectl.tmp"
    mv "$CLUSTER_DIR/bin/kubectl.tmp" "$CLUSTER_DIR/bin/kubectl"
  fi
}

# The sandbox image must exist before any pod can start.
if [ ! -f "$IMAGES_DIR/pause.tar" ]; then
  stamp "no $IMAGES_DIR/pause.tar: building pause and workload images"
  (cd "$REPO" && go run ./hack/images -out "$IMAGES_DIR" >/dev/null) || die "building images failed"
fi

# ---------------------------------------------------------------------------
# Already up?
# ---------------------------------------------------------------------------
if healthy; then
  import_images
  publish_kubeconfig
  node_usable || wait_for "node $NODE_NAME Ready" 30 node_usable
  stamp "cluster already up: KUBECONFIG=$CLUSTER_DIR/kubeconfig $CLUSTER_DIR/bin/kubectl"
  exit 0
fi
if [ -d "$KTC" ] && [ -n "$(find "$KTC" -mindepth 1 -maxdepth 1 ! -name logs -print -quit)" ]; then
  stamp "cluster state in $KTC but the cluster is not healthy: tearing it down, starting clean"
  "$HERE/down.sh"
fi

# ---------------------------------------------------------------------------
# Preflight: nothing else may hold our ports, and no other kubelet's pods may
# sit in /kubepods (our kubelet would treat them as orphans and kill them).
# ---------------------------------------------------------------------------
for p in $PORTS; do
  if [ -n "$(ss -Hltn "sport = :$p")" ]; then
    die "port $p is in use: $(ss -Hltnp "sport = :$p" | grep -o 'users:.*' | head -1); another cluster running?"
  fi
done
for h in /sys/fs/cgroup/*/kubepods; do
  [ -d "$h" ] || continue
  if [ -n "$(find "$h" -name cgroup.procs -exec cat {} + 2>/dev/null | head -1)" ]; then
    die "$h holds processes of another kubelet; stop that cluster first"
  fi
done

rm -rf "$LOG"
mkdir -p "$RUN" "$LOG" "$PKI" "$CONF" "$KTC/cni/net.d" "$KTC/cni/ipam" "$KTC/pod-logs"
echo "$NODE_NAME $NODE_IP" > "$RUN/node"
stamp "starting a fresh cluster: node $NODE_NAME, IP $NODE_IP, state in $KTC"

# ---------------------------------------------------------------------------
# PKI: ECDSA P-256 (keys in milliseconds; RSA-2048 cost ~2 s), 1 year.
# ---------------------------------------------------------------------------
cat > "$PKI/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
EOF
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/$1.key" 2>/dev/null; }
# cert NAME SUBJECT [SANS]: a client+server certificate signed by the CA
cert() {
  local n=$1 subj=$2 san=${3:-}
  key "$n"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=serverAuth,clientAuth"
    [ -z "$san" ] || echo "subjectAltName=$san"
  } > "$PKI/$n.ext"
  openssl req -new -config "$PKI/openssl.cnf" -key "$PKI/$n.key" -subj "$subj" 2>/dev/null |
    openssl x509 -req -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial -days 365 \
      -extfile "$PKI/$n.ext" -out "$PKI/$n.crt" 2>/dev/null
}
key ca
openssl req -x509 -new -config "$PKI/openssl.cnf" -extensions ca -key "$PKI/ca.key" \
  -subj "/CN=ktrace-cluster-ca" -days 365 -out "$PKI/ca.crt" 2>/dev/null
key sa
openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
cert apiserver "/CN=kube-apiserver" \
  "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,DNS:$NODE_NAME,IP:127.0.0.1,IP:$NODE_IP,IP:${SERVICE_CIDR%.0/*}.1"
cert admin "/O=system:masters/CN=kubernetes-admin"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
cert controller-manager "/CN=system:kube-controller-manager"
cert scheduler "/CN=system:kube-scheduler"
cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"

# kubeconfig NAME: self-contained (certificates inline), so it can be copied.
kubeconfig() {
  cat > "$KTC/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ktrace
  cluster:
    server: https://$NODE_IP:6443
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $1
  user:
    client-certificate-data: $(base64 -w0 "$PKI/$1.crt")
    client-key-data: $(base64 -w0 "$PKI/$1.key")
contexts:
- name: ktrace
  context: {cluster: ktrace, user: $1, namespace: default}
current-context: ktrace
EOF
  chmod 600 "$KTC/$1.kubeconfig"
}
for k in admin controller-manager scheduler kubelet; do kubeconfig "$k"; done
stamp "pki and kubeconfigs ready"

# ---------------------------------------------------------------------------
# Configuration files
# ---------------------------------------------------------------------------
cat > "$KTC/cni/net.d/10-$CNI_NET.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "$CNI_NET",
  "plugins": [
    { "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false,
      "hairpinMode": true,
      "ipam": { "type": "host-local", "dataDir": "$KTC/cni/ipam",
                "ranges": [[{ "subnet": "$POD_CIDR" }]],
                "routes": [{ "dst": "0.0.0.0/0" }] } },
    { "type": "loopback" }
  ]
}
EOF
# containerd 1.6 still uses two host paths whatever the config says:
# /run/containerd/s (shim sockets) and /var/lib/cni/results (libcni cache);
# the kubelet two more: /var/log/containers (links to the pod logs) and
# /var/lib/kubelet/device-plugins/kubelet.sock. down.sh removes our entries.
cat > "$CONF/containerd.toml" <<EOF
version = 2
root = "$KTC/containerd/root"
state = "$KTC/containerd/state"
[grpc]
  address = "$CTR_SOCK"
[ttrpc]
  address = "$CTR_SOCK.ttrpc"
[debug]
  address = "$RUN/containerd-debug.sock"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$KTC/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "ktrace.local/pause:v1"
  enable_unprivileged_ports = false
  # Root here lacks CAP_SYS_RESOURCE, so runc cannot set the negative
  # oom_score_adj the kubelet asks for (-998 for sandboxes): "can't get final
  # child's PID from pipe: EOF". This clamps it to containerd's own (0).
  restrict_oom_score_adj = true
  # pod network namespaces under our state dir instead of /var/run/netns
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$KTC/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$KTC/cni/net.d"
EOF
# failCgroupV1: false - from 1.35 the kubelet refuses cgroup v1 hosts
# otherwise. cgroupfs: no systemd here.
cat > "$CONF/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$CTR_SOCK
address: $NODE_IP
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
podLogsDir: $KTC/pod-logs
serializeImagePulls: false
# never garbage-collect the imported images (there is no registry to pull from)
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
podPidsLimit: 4096
EOF

# ---------------------------------------------------------------------------
# Daemons. etcd and containerd start together; images are imported while
# the apiserver comes up.
# ---------------------------------------------------------------------------
start etcd "$ETCD_BIN" --name ktrace --data-dir "$KTC/etcd" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster ktrace=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381 \
  --quota-backend-bytes 2147483648
start containerd /usr/bin/containerd --config "$CONF/containerd.toml"
wait_for etcd 30 curl -sf http://127.0.0.1:2381/health

# --kubelet-preferred-address-types: the hostname may resolve to 127.0.0.1
# (/etc/hosts), where the kubelet does not listen; logs/exec/attach failed.
start kube-apiserver "$K8S_BIN/kube-apiserver" \
  --bind-address="$NODE_IP" --advertise-address="$NODE_IP" --secure-port=6443 \
  --etcd-servers=http://127.0.0.1:2379 \
  --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --client-ca-file="$PKI/ca.crt" \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
  --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --kubelet-preferred-address-types=InternalIP,Hostname \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
  --allow-privileged=true --profiling=false --v=1

wait_for containerd 30 ctr_k8s version
import_images
# grep without -q reads all of ctr's output: with -q it exits at the first
# match and, under pipefail, a SIGPIPE in ctr failed the check (CI, stop 7).
ctr_k8s images ls -q | grep -x ktrace.local/pause:v1 >/dev/null ||
  die "sandbox image ktrace.local/pause:v1 missing after import: rebuild with go run ./hack/images -out $IMAGES_DIR"

wait_for kube-apiserver 90 curl -sf --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
  "https://$NODE_IP:6443/readyz"
# --kube-api-qps/burst: with one service account per controller, start-up
# makes ~3 API calls per controller; at the default 20 QPS that alone took
# ~5 s and delayed the default ServiceAccount and the node's not-ready taint
# removal. --node-monitor-period=1s: the node lifecycle controller lifts that
# taint on its next pass (default 5 s).
start kube-controller-manager "$K8S_BIN/kube-controller-manager" \
  --kubeconfig="$KTC/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$KTC/controller-manager.kubeconfig" \
  --authorization-kubeconfig="$KTC/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false \
  --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
  --use-service-account-credentials=true \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
  --controllers='*,-cloud-node-lifecycle-controller' --profiling=false --v=1 \
  --node-monitor-period=1s --kube-api-qps=200 --kube-api-burst=400
start kube-scheduler "$K8S_BIN/kube-scheduler" \
  --kubeconfig="$KTC/scheduler.kubeconfig" \
  --authentication-kubeconfig="$KTC/scheduler.kubeconfig" \
  --authorization-kubeconfig="$KTC/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false --profiling=false --v=1
start kubelet "$K8S_BIN/kubelet" --config="$CONF/kubelet.yaml" \
  --kubeconfig="$KTC/kubelet.kubeconfig" --root-dir="$KTC/kubelet" --cert-dir="$KTC/kubelet/pki" \
  --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --v=1

publish_kubeconfig
wait_for "node $NODE_NAME Ready and untainted" 120 node_usable
wait_for "serviceaccount default/default" 60 "${KUBECTL[@]}" -n default get serviceaccount default
stamp "cluster up: KUBECONFIG=$CLUSTER_DIR/kubeconfig $CLUSTER_DIR/bin/kubectl"
