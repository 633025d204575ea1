package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// pollInterval paces the waits on the API server.
const pollInterval = 250 * time.Millisecond

// startFailureReasons are container waiting reasons that do not resolve by
// waiting longer.
var startFailureReasons = map[string]string{
	"ErrImagePull":               "the node cannot pull the tracer image: check --image, or load the image onto the node",
	"ImagePullBackOff":           "the node cannot pull the tracer image: check --image, or load the image onto the node",
	"InvalidImageName":           "the tracer image name is invalid: check --image",
	"CreateContainerConfigError": "the helper's container config is invalid",
	"CreateContainerError":       "the runtime could not create the helper's container",
	"RunContainerError":          "the runtime could not start the helper's container",
	"CrashLoopBackOff":           "the helper keeps crashing",
}

// waitRunning waits until the helper's tracer container runs, printing
// progress and the pod's warning events on progress. It fails early on
// conditions that waiting will not fix.
func waitRunning(ctx context.Context, client kubernetes.Interface, namespace, name string, timeout time.Duration, progress report) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	seenEvents := map[string]bool{}
	lastState := ""
	var stateErr error
	err := followPod(ctx, client, namespace, name, func(pod *corev1.Pod, tick bool) (bool, error) {
		state, done, err := helperState(pod)
		if tick || err != nil {
			// Events explain a slow or failed start; a pod that starts
			// within a tick needs none, and saves the round trip.
			printEvents(ctx, client, pod, seenEvents, progress)
		}
		if err != nil || done {
			stateErr = err
			return true, err
		}
		if state != lastState {
			progress.step("helper pod %s/%s: %s", namespace, name, state)
			lastState = state
		}
		return false, nil
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("helper pod %s/%s did not start within %s (last state: %s): see 'kubectl describe pod %s -n %s', or raise --start-timeout",
			namespace, name, timeout, lastState, name, namespace)
	}
	if err != nil && err != stateErr && ctx.Err() == nil {
		return fmt.Errorf("waiting for helper pod %s/%s: %w", namespace, name, err)
	}
	return err
}

// helperState reads a helper pod's status: a short description, whether the
// tracer runs, and an error when it never will.
func helperState(pod *corev1.Pod) (state string, running bool, err error) {
	ref := pod.Namespace + "/" + pod.Name
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return "", false, fmt.Errorf("helper pod %s cannot be scheduled: %s", ref, c.Message)
		}
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name != HelperContainerName {
			continue
		}
		switch {
		case cs.State.Running != nil:
			return "running", true, nil
		case cs.State.Terminated != nil:
			return "", false, terminatedError(pod, cs.State.Terminated)
		case cs.State.Waiting != nil:
			if hint, bad := startFailureReasons[cs.State.Waiting.Reason]; bad {
				return "", false, fmt.Errorf("helper pod %s on node %q: %s: %s (%s)", ref, pod.Spec.NodeName,
					cs.State.Waiting.Reason, hint, strings.TrimSpace(cs.State.Waiting.Message))
			}
			return cs.State.Waiting.Reason, false, nil
		}
	}
	if pod.Status.Phase == corev1.PodFailed {
		return "", false, fmt.Errorf("helper pod %s failed: %s %s", ref, pod.Status.Reason, pod.Status.Message)
	}
	return string(pod.Status.Phase), false, nil
}

// terminatedError explains a tracer that exited before or while streaming.
func terminatedError(pod *corev1.Pod, t *corev1.ContainerStateTerminated) error {
	if t.ExitCode == 0 {
		return nil
	}
	msg := strings.TrimSpace(t.Message)
	if msg == "" {
		msg = t.Reason
	}
	if t.Reason == "OOMKilled" {
		msg = "the helper ran out of memory (OOMKilled)"
	}
	return fmt.Errorf("helper on node %q exited with code %d: %s", pod.Spec.NodeName, t.ExitCode, msg)
}

// printEvents prints the pod's warning events not printed before. Events are
// a courtesy: a user who may not list them still gets the pod's status.
func printEvents(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod, seen map[string]bool, out report) {
	sel := fields.Set{"involvedObject.name": pod.Name, "involvedObject.uid": string(pod.UID)}.AsSelector().String()
	list, err := client.CoreV1().Events(pod.Namespace).List(ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		return
	}
	for _, e := range list.Items {
		if seen[e.Name] {
			continue
		}
		seen[e.Name] = true
		switch {
		case e.Type == corev1.EventTypeWarning:
			out.warn("%s: %s", e.Reason, e.Message)
		case e.Reason == "Pulling":
			out.step("%s", e.Message)
		}
	}
}

// DeleteHelperPod removes a helper pod and waits until it is gone, so that a
// finished session leaves nothing behind. It uses its own context: it runs
// after the session's context was cancelled. released says that the helper
// holds nothing in the kernel any more (it reported its final statistics,
// which it does after detaching, or it only ever held): the pod then goes
// without a grace period. Its status cannot say so: it shows the tracer
// running for up to a second after it exited, until the kubelet's next
// relist, and a graceful delete waited for that.
func DeleteHelperPod(client kubernetes.Interface, namespace, name string, timeout time.Duration, released bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	pods := client.CoreV1().Pods(namespace)
	opts := metav1.DeleteOptions{}
	if released {
		opts.GracePeriodSeconds = ptr.To(int64(0))
	} else if pod, err := pods.Get(ctx, name, metav1.GetOptions{}); err == nil && !tracerRunning(pod) {
		// Nothing runs that needs a graceful stop.
		opts.GracePeriodSeconds = ptr.To(int64(0))
	}
	if err := pods.Delete(ctx, name, opts); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting helper pod %s/%s: %w (remove it with 'kubectl trace cleanup')", namespace, name, err)
	}
	for {
		_, err := pods.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("helper pod %s/%s still exists %s after deletion: remove it with 'kubectl trace cleanup'", namespace, name, timeout)
		case <-time.After(pollInterval):
		}
	}
}

// tracerRunning says whether the helper pod's tracer container runs.
func tracerRunning(pod *corev1.Pod) bool {
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == HelperContainerName && cs.State.Running != nil {
			return true
		}
	}
	return false
}
