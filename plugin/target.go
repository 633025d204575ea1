package plugin

import (
	"context"
	"fmt"
	"strings"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// defaultContainerAnnotation is kubectl's way for a pod to name the container
// that commands pick when -c is not given.
const defaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

// parseTargetArg splits "pod/web", "pods/web" or "web" into kind and name.
func parseTargetArg(arg string) (kind, name string, err error) {
	kind, name, found := strings.Cut(arg, "/")
	if !found {
		kind, name = "pod", arg
	}
	switch strings.ToLower(kind) {
	case "pod", "pods", "po":
		kind = "pod"
	default:
		return "", "", fmt.Errorf("target %q: only pods can be traced in this release: use pod/NAME", arg)
	}
	if name == "" {
		return "", "", fmt.Errorf("target %q has no name: use pod/NAME", arg)
	}
	return kind, name, nil
}

// targetFromPod finds the container to trace in a pod and checks that it
// runs; defaulted says so when the container was chosen for the user.
func targetFromPod(pod *corev1.Pod, container string) (t wire.Target, defaulted string, err error) {
	ref := pod.Namespace + "/" + pod.Name
	names := make([]string, 0, len(pod.Spec.Containers))
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	if container == "" {
		container = pod.Annotations[defaultContainerAnnotation]
		if container == "" && len(names) > 0 {
			container = names[0]
		}
		if len(names) > 1 {
			defaulted = fmt.Sprintf("Defaulted container %q out of: %s (use -c to choose)", container, strings.Join(names, ", "))
		}
	}
	found := false
	for _, n := range names {
		found = found || n == container
	}
	if !found {
		return t, "", fmt.Errorf("container %q not found in pod %s: choose one of: %s", container, ref, strings.Join(names, ", "))
	}
	switch pod.Status.Phase {
	case corev1.PodRunning:
	case corev1.PodSucceeded, corev1.PodFailed:
		return t, "", fmt.Errorf("pod %s has finished (%s): only running containers can be traced", ref, pod.Status.Phase)
	default:
		return t, "", fmt.Errorf("pod %s is %s, not Running: wait for it with 'kubectl wait --for=condition=Ready pod/%s -n %s'", ref, pod.Status.Phase, pod.Name, pod.Namespace)
	}
	if pod.Spec.NodeName == "" {
		return t, "", fmt.Errorf("pod %s is not bound to a node yet", ref)
	}
	var status *corev1.ContainerStatus
	for i := range pod.Status.ContainerStatuses {
		if pod.Status.ContainerStatuses[i].Name == container {
			status = &pod.Status.ContainerStatuses[i]
		}
	}
	if status == nil || status.State.Running == nil || status.ContainerID == "" {
		why := "no status yet"
		if status != nil && status.State.Waiting != nil {
			why = "waiting: " + status.State.Waiting.Reason
		} else if status != nil && status.State.Terminated != nil {
			why = "terminated: " + status.State.Terminated.Reason
		}
		return t, "", fmt.Errorf("container %q of pod %s is not running (%s): only running containers can be traced", container, ref, why)
	}
	return wire.Target{
		Node:        pod.Spec.NodeName,
		Namespace:   pod.Namespace,
		Pod:         pod.Name,
		PodUID:      string(pod.UID),
		Container:   container,
		ContainerID: status.ContainerID,
	}, defaulted, nil
}

// checkNode refuses nodes the helper cannot run on. named says the user
// named the node (node/NAME): it must then exist, and reading it is a right
// preflight checked.
func checkNode(ctx context.Context, client kubernetes.Interface, name string, named bool) error {
	node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsForbidden(err) && !named {
		// Reading nodes is a cluster-scoped right many users lack; the
		// helper itself reports an unusable node.
		return nil
	}
	if apierrors.IsNotFound(err) && named {
		return fmt.Errorf("node %q not found: list the nodes with 'kubectl get nodes'", name)
	}
	if err != nil {
		return fmt.Errorf("getting node %q: %w", name, err)
	}
	if os := node.Labels[corev1.LabelOSStable]; os != "" && os != "linux" {
		return fmt.Errorf("node %q runs %s: kernel tracing needs a Linux node", name, os)
	}
	return nil
}
