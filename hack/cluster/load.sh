#!/usr/bin/env bash
# load.sh - import image tarballs (docker-archive, as written by
# `go run ./hack/images`) into the running test cluster's containerd, in the
# k8s.io namespace the kubelet uses. Pods then use them with
# imagePullPolicy: Never (or IfNotPresent). Extra nodes (add-node.sh) whose
# containerd runs get the images too.
#
#   hack/cluster/load.sh bin/images/tracer.tar [...]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib.sh"

[ $# -gt 0 ] || { echo "usage: $0 IMAGE.tar [...]" >&2; exit 2; }
for f in "$@"; do
  [ -f "$f" ] || die "no such image tarball: $f"
done
cluster_lock
if ! alive containerd || ! ctr_k8s version >/dev/null 2>&1; then
  die "the test cluster is not up (no containerd at $CTR_SOCK): run hack/cluster/up.sh first"
fi
nodes=$(running_extra_nodes)
for f in "$@"; do
  import_image "$f"
  for n in $nodes; do import_image "$f" "$NODES/$n/run"; done
done
