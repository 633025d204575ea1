package session

import (
	"strings"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// HelperParams is everything the helper pod spec depends on.
type HelperParams struct {
	Name      string
	Namespace string
	Node      string
	Image     string
	// PullPolicy is left to Kubernetes' default when empty.
	PullPolicy corev1.PullPolicy
	// Request gives the labels and annotations: the session, the hook
	// (none for kubectl trace exec, which runs no hook) and the targets.
	Request wire.Request
	// EncodedRequest is Request.Encode()'s result.
	EncodedRequest string
	// Deadline bounds the helper's life even if everything else fails.
	Deadline time.Duration
	// Needs are the hook's declared needs: they decide the capabilities
	// and the host namespaces.
	Needs hooks.Needs
	// Privileged replaces the derived capabilities with a privileged
	// container (--privileged).
	Privileged bool
	// Args replaces the tracer's arguments (["hold"] for kubectl trace exec,
	// which needs no request).
	Args []string
}

// helperDeadline is the helper's last backstop: the plugin stops it by closing
// stdin, and the kubelet does so when the plugin dies; this only catches a
// helper that is stuck.
func helperDeadline(traceFor time.Duration) time.Duration {
	if traceFor > 0 {
		return traceFor + 5*time.Minute
	}
	return 24 * time.Hour
}

// HelperPod builds the node-level helper pod. It is a pure function so that
// tests can compare its output field by field.
func HelperPod(p HelperParams) *corev1.Pod {
	var targets []string
	for _, t := range p.Request.Targets {
		targets = append(targets, t.String())
	}
	pod := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      p.Name,
			Namespace: p.Namespace,
			Labels: map[string]string{
				LabelManagedBy: ManagedByValue,
				LabelComponent: ComponentHelper,
				LabelSession:   p.Request.SessionID,
			},
			Annotations: map[string]string{
				AnnotationTargets: strings.Join(targets, ","),
			},
		},
		Spec: corev1.PodSpec{
			// Pinned by name: the helper must run where the target runs, and
			// the scheduler has nothing to decide.
			NodeName:      p.Node,
			RestartPolicy: corev1.RestartPolicyNever,
			// The helper resolves no names; cluster DNS may not even exist.
			DNSPolicy: corev1.DNSDefault,
			// Node mode finds the target among the node's processes.
			HostPID:                       p.Needs.HostPID,
			ActiveDeadlineSeconds:         ptr.To(int64(p.Deadline.Seconds())),
			TerminationGracePeriodSeconds: ptr.To(int64(10)),
			AutomountServiceAccountToken:  ptr.To(false),
			EnableServiceLinks:            ptr.To(false),
			// The target's node may be tainted (control plane, dedicated
			// pools); the helper must run there anyway.
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{
				Name:            HelperContainerName,
				Image:           p.Image,
				ImagePullPolicy: p.PullPolicy,
				Args:            p.Args,
				// The dead-man's switch: the tracer stops at end of stdin, which
				// the kubelet delivers when the plugin's attach session ends.
				Stdin:     true,
				StdinOnce: true,
				TTY:       false,
				// Least privilege: what the hook's descriptor says it needs.
				SecurityContext:          securityContext(p.Needs, p.Privileged),
				TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{
						corev1.ResourceCPU:    resource.MustParse("50m"),
						corev1.ResourceMemory: resource.MustParse("32Mi"),
					},
					Limits: corev1.ResourceList{
						corev1.ResourceMemory: resource.MustParse("512Mi"),
					},
				},
			}},
		},
	}
	if p.Request.Hook != "" {
		pod.Annotations[AnnotationHook] = p.Request.Hook
	}
	if p.EncodedRequest != "" {
		pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: wire.RequestEnv, Value: p.EncodedRequest}}
	}
	return pod
}
