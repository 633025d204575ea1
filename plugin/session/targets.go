package session

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

// Source is one set of pods a session traces: a pod by name, traced as
// long as it lives, or a selector (from -l or a workload), whose matching
// pods join and leave while the session runs.
type Source struct {
	// What is how the user named it, for messages: "deploy/web", "-l app=a".
	What string
	// Namespace is the pods' namespace; "" is every namespace (a selector).
	Namespace string
	// Name is the pod's name when Selector is nil.
	Name     string
	Selector labels.Selector
}

// Live says whether the source is followed: pods that start to match
// join the session.
func (s Source) Live() bool { return s.Selector != nil }

// listPods returns the pods of a source now.
func (s Source) listPods(ctx context.Context, client kubernetes.Interface) ([]corev1.Pod, error) {
	if !s.Live() {
		pod, err := client.CoreV1().Pods(s.Namespace).Get(ctx, s.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("pod %q not found in namespace %q: list the pods with 'kubectl get pods -n %s'", s.Name, s.Namespace, s.Namespace)
		}
		if err != nil {
			return nil, fmt.Errorf("getting pod %s/%s: %w", s.Namespace, s.Name, err)
		}
		return []corev1.Pod{*pod}, nil
	}
	list, err := client.CoreV1().Pods(s.Namespace).List(ctx, metav1.ListOptions{LabelSelector: s.Selector.String()})
	if err != nil {
		return nil, fmt.Errorf("listing the pods of %s: %w", s.What, err)
	}
	return list.Items, nil
}

// initialTargets resolves every source to the containers to trace now. A
// pod named by the user must be traceable; pods found by a selector that
// are not running yet are skipped (they join when they run).
func initialTargets(ctx context.Context, client kubernetes.Interface, sources []Source, container string, note func(string, ...any)) ([]wire.Target, error) {
	seen := map[string]bool{}
	var out []wire.Target
	for _, s := range sources {
		pods, err := s.listPods(ctx, client)
		if err != nil {
			return nil, err
		}
		found := 0
		for i := range pods {
			pod := &pods[i]
			if seen[string(pod.UID)] {
				continue
			}
			t, defaulted, err := targetFromPod(pod, container)
			if err != nil {
				if !s.Live() {
					return nil, err
				}
				note("skipping %s/%s for now: %v", pod.Namespace, pod.Name, err)
				continue
			}
			if defaulted != "" && !s.Live() {
				note("%s", defaulted)
			}
			seen[string(pod.UID)] = true
			found++
			out = append(out, t)
		}
		if s.Live() && found == 0 {
			where := "namespace " + s.Namespace
			if s.Namespace == "" {
				where = "any namespace"
			}
			return nil, fmt.Errorf("no running pod of %s in %s: check the selector with 'kubectl get pods -l %s'", s.What, where, s.Selector)
		}
	}
	return out, nil
}

// nodeTargets returns the whole-node targets of names.
func nodeTargets(names []string) []wire.Target {
	out := make([]wire.Target, 0, len(names))
	for _, n := range names {
		out = append(out, wire.Target{Kind: wire.TargetNode, Node: n})
	}
	return out
}

// byNode groups targets by the node they run on, in a stable order.
func byNode(targets []wire.Target) (nodes []string, groups map[string][]wire.Target) {
	groups = map[string][]wire.Target{}
	for _, t := range targets {
		if _, ok := groups[t.Node]; !ok {
			nodes = append(nodes, t.Node)
		}
		groups[t.Node] = append(groups[t.Node], t)
	}
	sort.Strings(nodes)
	return nodes, groups
}

// defaultContainerAnnotation is kubectl's way for a pod to name the container
// that commands pick when -c is not given.
const defaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

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
