package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// ErrEphemeralDisabled is returned when the API server has no
// pods/ephemeralcontainers subresource.
var ErrEphemeralDisabled = errors.New("ephemeral containers are disabled in this cluster: use the default node mode (drop --mode ephemeral)")

// ephemeralAccess is what ephemeral mode does in the target's namespace.
var ephemeralAccess = []access{
	{verb: "get", resource: "pods"},
	{verb: "patch", resource: "pods", subresource: "ephemeralcontainers"},
	{verb: "create", resource: "pods", subresource: "attach"},
}

// EphemeralParams is everything the ephemeral tracer container depends on.
type EphemeralParams struct {
	Name           string
	Image          string
	Target         string // the container whose PID namespace it joins
	EncodedRequest string
	Needs          hooks.Needs
	Privileged     bool
}

// EphemeralContainer builds the tracer as an ephemeral container in the
// target pod. It shares the target container's PID namespace, so the
// tracer sees the target's processes (with the pod's PIDs, not the node's).
func EphemeralContainer(p EphemeralParams) corev1.EphemeralContainer {
	return corev1.EphemeralContainer{
		TargetContainerName: p.Target,
		EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			Name:  p.Name,
			Image: p.Image,
			Env:   []corev1.EnvVar{{Name: wire.RequestEnv, Value: p.EncodedRequest}},
			// The same dead-man's switch as the helper pod's.
			Stdin:                    true,
			StdinOnce:                true,
			SecurityContext:          securityContext(p.Needs, p.Privileged),
			TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		},
	}
}

// addEphemeral patches the container into the pod.
func addEphemeral(ctx context.Context, client kubernetes.Interface, namespace, pod string, ec corev1.EphemeralContainer) error {
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"ephemeralContainers": []corev1.EphemeralContainer{ec}}})
	if err != nil {
		return err
	}
	_, err = client.CoreV1().Pods(namespace).Patch(ctx, pod, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "ephemeralcontainers")
	if apierrors.IsNotFound(err) {
		// The pod exists (it was just resolved): a 404 is the subresource.
		if _, getErr := client.CoreV1().Pods(namespace).Get(ctx, pod, metav1.GetOptions{}); getErr == nil {
			return ErrEphemeralDisabled
		}
	}
	if err != nil {
		return fmt.Errorf("adding ephemeral container %s to pod %s/%s: %w", ec.Name, namespace, pod, err)
	}
	return nil
}

// waitEphemeral waits until the ephemeral container runs.
func waitEphemeral(ctx context.Context, client kubernetes.Interface, namespace, pod, name string, timeout time.Duration, u *ui) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	err := followPod(ctx, client, namespace, pod, func(p *corev1.Pod, _ bool) (bool, error) {
		for _, cs := range p.Status.EphemeralContainerStatuses {
			if cs.Name != name {
				continue
			}
			switch {
			case cs.State.Running != nil:
				return true, nil
			case cs.State.Terminated != nil:
				if err := terminatedError(p, cs.State.Terminated); err != nil {
					return true, err
				}
				return true, fmt.Errorf("ephemeral container %s in pod %s/%s ended before it was attached", name, namespace, pod)
			case cs.State.Waiting != nil:
				if hint, bad := startFailureReasons[cs.State.Waiting.Reason]; bad {
					return true, fmt.Errorf("ephemeral container %s in pod %s/%s: %s: %s (%s)", name, namespace, pod,
						cs.State.Waiting.Reason, hint, strings.TrimSpace(cs.State.Waiting.Message))
				}
				if cs.State.Waiting.Reason != last {
					last = cs.State.Waiting.Reason
					u.step("ephemeral container %s in pod %s/%s: %s", name, namespace, pod, last)
				}
			}
		}
		return false, nil
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("ephemeral container %s in pod %s/%s did not start within %s: see 'kubectl describe pod %s -n %s', or raise --start-timeout",
			name, namespace, pod, timeout, pod, namespace)
	}
	return err
}

// checkEphemeralSecurity evaluates the target pod with the tracer added
// against its namespace's Pod Security level: ephemeral containers are
// admitted under the target's namespace rules.
func checkEphemeralSecurity(ctx context.Context, client kubernetes.Interface, namespace, pod string, ec corev1.EphemeralContainer) error {
	p, err := client.CoreV1().Pods(namespace).Get(ctx, pod, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("getting pod %s/%s: %w", namespace, pod, err)
	}
	p = p.DeepCopy()
	p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, ec)
	err = checkPodSecurity(ctx, client, p)
	if errors.Is(err, ErrPodSecurity) {
		return fmt.Errorf("%w (ephemeral containers follow the target pod's namespace: the default node mode can run its helper elsewhere with --helper-namespace)", err)
	}
	return err
}
