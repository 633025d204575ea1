package session

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestHelperPod(t *testing.T) {
	req := wire.Request{
		Version: wire.ProtocolVersion, SessionID: "s1", Hook: "sched", Output: "text",
		Targets: []wire.Target{{Node: "n1", Namespace: "ns", Pod: "web", Container: "app", ContainerID: "containerd://0123456789abcdef"}},
	}
	got := HelperPod(HelperParams{
		Name: "kubectl-trace-s1", Namespace: "ns", Node: "n1", Image: "img:v1",
		Request: req, EncodedRequest: "ENC", Deadline: helperDeadline(10 * time.Second),
		Needs: hooks.Needs{Capabilities: []string{"SYS_PTRACE", "SYS_ADMIN", "SYS_ADMIN"}, HostPID: true},
	})
	want := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "kubectl-trace-s1", Namespace: "ns",
			Labels: map[string]string{
				"app.kubernetes.io/managed-by": "kubectl-trace",
				"app.kubernetes.io/component":  "helper",
				"kubectl-trace.dev/session":    "s1",
			},
			Annotations: map[string]string{
				"kubectl-trace.dev/hook":    "sched",
				"kubectl-trace.dev/targets": "ns/web/app",
			},
		},
		Spec: corev1.PodSpec{
			NodeName:                      "n1",
			RestartPolicy:                 corev1.RestartPolicyNever,
			DNSPolicy:                     corev1.DNSDefault,
			HostPID:                       true,
			ActiveDeadlineSeconds:         ptr.To(int64(310)),
			TerminationGracePeriodSeconds: ptr.To(int64(10)),
			AutomountServiceAccountToken:  ptr.To(false),
			EnableServiceLinks:            ptr.To(false),
			Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{
				Name:      "tracer",
				Image:     "img:v1",
				Env:       []corev1.EnvVar{{Name: "KTRACE_REQUEST", Value: "ENC"}},
				Stdin:     true,
				StdinOnce: true,
				SecurityContext: &corev1.SecurityContext{
					RunAsUser:    ptr.To(int64(0)),
					RunAsNonRoot: ptr.To(false),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{"SYS_ADMIN", "SYS_PTRACE"}},
				},
				TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
				},
			}},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("HelperPod (-want +got):\n%s", diff)
	}
}

func TestHelperDeadline(t *testing.T) {
	if got := helperDeadline(0); got != 24*time.Hour {
		t.Errorf("unbounded trace: deadline %s, want 24h", got)
	}
	if got := helperDeadline(time.Minute); got != 6*time.Minute {
		t.Errorf("1m trace: deadline %s, want 6m", got)
	}
}

func TestPrivilegedOptIn(t *testing.T) {
	pod := HelperPod(HelperParams{Name: "h", Needs: hooks.Needs{Capabilities: []string{"BPF"}, HostPID: true}, Privileged: true})
	sc := pod.Spec.Containers[0].SecurityContext
	if sc.Privileged == nil || !*sc.Privileged || sc.Capabilities != nil {
		t.Errorf("--privileged: security context %+v, want privileged and nothing else", sc)
	}
}

func TestEveryHookDeclaresItsCapabilities(t *testing.T) {
	for _, d := range hooks.Catalogue() {
		if len(d.Needs.Capabilities) == 0 || !d.Needs.HostPID {
			t.Errorf("hook %q declares no capabilities or no host PID namespace: its helper could not work", d.Name)
		}
	}
}
