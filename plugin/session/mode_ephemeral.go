package session

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

// EphemeralMode traces each target from an ephemeral container in its pod,
// which shares the target container's PID namespace. An ephemeral container
// cannot be removed: the pod keeps it, stopped, until the pod is deleted.
type EphemeralMode struct{}

func (EphemeralMode) name() string { return wire.ModeEphemeral }

func (EphemeralMode) group(targets []wire.Target) [][]wire.Target {
	out := make([][]wire.Target, 0, len(targets))
	for _, t := range targets {
		out = append(out, []wire.Target{t})
	}
	return out
}

func (EphemeralMode) build(s helperSpec) Helper {
	t := s.targets[0]
	return &EphemeralHelper{Namespace: t.Namespace, Pod: t.Pod, Container: EphemeralContainer(EphemeralParams{
		Name: s.name, Image: s.image, Target: t.Container,
		EncodedRequest: s.encoded, Needs: s.needs, Privileged: s.privileged,
	})}
}

func (EphemeralMode) shared() bool { return false }

func (EphemeralMode) notice(id string) string {
	return fmt.Sprintf("ephemeral containers cannot be removed from a pod: each traced pod keeps a stopped %s* container in its spec until the pod is deleted", HelperNamePrefix+id)
}

// EphemeralHelper is an ephemeral container in a target's pod:
// EphemeralMode's helper.
type EphemeralHelper struct {
	Namespace, Pod string
	Container      corev1.EphemeralContainer
}

// DryRun returns the container, and the pod it goes into.
func (h *EphemeralHelper) DryRun() (string, any) {
	return fmt.Sprintf("ephemeral container for pod %s/%s", h.Namespace, h.Pod), h.Container
}

func (h *EphemeralHelper) preflight(ctx context.Context, client kubernetes.Interface, checked map[string]bool) error {
	if !checked[h.Namespace] {
		checked[h.Namespace] = true
		if err := checkAccessHint(ctx, client, h.Namespace, ephemeralAccess, "or use the default node mode, whose helper can run in another namespace"); err != nil {
			return err
		}
	}
	return checkEphemeralSecurity(ctx, client, h.Namespace, h.Pod, h.Container)
}

func (h *EphemeralHelper) create(ctx context.Context, client kubernetes.Interface, r report, _ int) error {
	r.step("adding ephemeral container %s to pod %s/%s", h.Container.Name, h.Namespace, h.Pod)
	return addEphemeral(ctx, client, h.Namespace, h.Pod, h.Container)
}

func (h *EphemeralHelper) waitStarted(ctx context.Context, client kubernetes.Interface, timeout time.Duration, r report) error {
	return waitEphemeral(ctx, client, h.Namespace, h.Pod, h.Container.Name, timeout, r)
}

func (h *EphemeralHelper) attachRef() (string, string, string) {
	return h.Namespace, h.Pod, h.Container.Name
}

// remove leaves the container: it ended with its stream, and the API has
// no way to take it out of the pod.
func (h *EphemeralHelper) remove(kubernetes.Interface, bool) error { return nil }

func (h *EphemeralHelper) ownsPod() bool { return false }

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
func waitEphemeral(ctx context.Context, client kubernetes.Interface, namespace, pod, name string, timeout time.Duration, u report) error {
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
