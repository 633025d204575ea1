#!/usr/bin/env bash
# demo.sh - `make demo`: a demo workload on the local cluster and a real
# five-second sched trace of it, printed to the terminal.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
export KUBECONFIG=$REPO/.cluster/kubeconfig
export PATH=$REPO/bin:$REPO/.cluster/bin:$PATH
NS=ktrace-demo

kubectl get namespace "$NS" >/dev/null 2>&1 || kubectl create namespace "$NS" >/dev/null
kubectl apply -n "$NS" -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: demo
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: ktrace.local/workload:v1
    imagePullPolicy: Never
    command: ["/usr/bin/ktdemo", "spin"]
YAML
kubectl wait -n "$NS" --for=condition=Ready pod/demo --timeout=120s >/dev/null
echo "+ kubectl trace pod/demo -n $NS --hook sched --duration 5s | head -n 40" >&2
kubectl trace pod/demo -n "$NS" --hook sched --duration 5s | head -n 40
