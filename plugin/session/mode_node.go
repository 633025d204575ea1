package session

import (
	"context"
	"fmt"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// NodeMode traces each node's targets from one helper pod on that node,
// and a target that joins from its node's running helper.
type NodeMode struct {
	// Namespace is where the helper pods run; "" is the namespace of each
	// helper's first target.
	Namespace string
	// NodeNamespace is where a whole node's helper runs when Namespace is
	// "": a node has no namespace (the kubeconfig's, or the session's own).
	NodeNamespace string
}

func (NodeMode) name() string { return wire.ModeNode }

func (NodeMode) group(targets []wire.Target) [][]wire.Target {
	nodes, groups := byNode(targets)
	out := make([][]wire.Target, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, groups[n])
	}
	return out
}

func (m NodeMode) build(s helperSpec) Helper {
	ns := m.Namespace
	if ns == "" {
		ns = s.targets[0].Namespace
	}
	if ns == "" {
		ns = m.NodeNamespace
	}
	return &PodHelper{Pod: HelperPod(HelperParams{
		Name: s.name, Namespace: ns, Node: s.node, Image: s.image,
		Request: s.request, EncodedRequest: s.encoded, Deadline: s.deadline,
		Needs: s.needs, Privileged: s.privileged,
	})}
}

func (NodeMode) shared() bool { return true }

func (NodeMode) notice(string) string { return "" }

// PodHelper is a helper pod: NodeMode's helper.
type PodHelper struct {
	Pod *corev1.Pod
}

// DryRun returns the pod.
func (h *PodHelper) DryRun() (string, any) { return "", h.Pod }

func (h *PodHelper) preflight(ctx context.Context, client kubernetes.Interface, checked map[string]bool) error {
	if checked[h.Pod.Namespace] {
		return nil
	}
	checked[h.Pod.Namespace] = true
	return preflight(ctx, client, h.Pod)
}

func (h *PodHelper) create(ctx context.Context, client kubernetes.Interface, r report, targets int) error {
	p := h.Pod
	r.step("creating helper pod %s/%s on node %q for %d target(s)", p.Namespace, p.Name, p.Spec.NodeName, targets)
	if _, err := client.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating helper pod on node %q: %w", p.Spec.NodeName, err)
	}
	return nil
}

func (h *PodHelper) waitStarted(ctx context.Context, client kubernetes.Interface, timeout time.Duration, r report) error {
	return waitRunning(ctx, client, h.Pod.Namespace, h.Pod.Name, timeout, r)
}

func (h *PodHelper) attachRef() (string, string, string) {
	return h.Pod.Namespace, h.Pod.Name, HelperContainerName
}

func (h *PodHelper) remove(client kubernetes.Interface, released bool) error {
	return DeleteHelperPod(client, h.Pod.Namespace, h.Pod.Name, 30*time.Second, released)
}

func (h *PodHelper) ownsPod() bool { return true }
