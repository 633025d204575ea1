package session

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

const testCID = "containerd://0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// runningPod is a pod as the API server shows it once its containers run.
func runningPod(name string, containers ...string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name)},
		Spec:       corev1.PodSpec{NodeName: "n1"},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c})
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c, ContainerID: testCID, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
		})
	}
	return p
}

func TestTargetFromPod(t *testing.T) {
	want := wire.Target{Node: "n1", Namespace: "ns", Pod: "web", PodUID: "uid-web", Container: "app", ContainerID: testCID}
	tests := []struct {
		name          string
		pod           func() *corev1.Pod
		container     string
		want          wire.Target
		wantDefaulted bool
		wantErr       string
	}{
		{name: "single container", pod: func() *corev1.Pod { return runningPod("web", "app") }, want: want},
		{name: "named container", pod: func() *corev1.Pod { return runningPod("web", "side", "app") }, container: "app", want: want},
		{name: "first of two is defaulted", pod: func() *corev1.Pod { return runningPod("web", "app", "side") }, want: want, wantDefaulted: true},
		{name: "default-container annotation", pod: func() *corev1.Pod {
			p := runningPod("web", "side", "app")
			p.Annotations = map[string]string{defaultContainerAnnotation: "app"}
			return p
		}, want: want, wantDefaulted: true},
		{name: "missing container", pod: func() *corev1.Pod { return runningPod("web", "app", "side") }, container: "nope",
			wantErr: `container "nope" not found in pod ns/web: choose one of: app, side`},
		{name: "pending", pod: func() *corev1.Pod { p := runningPod("web", "app"); p.Status.Phase = corev1.PodPending; return p },
			wantErr: "is Pending, not Running: wait for it"},
		{name: "succeeded", pod: func() *corev1.Pod { p := runningPod("web", "app"); p.Status.Phase = corev1.PodSucceeded; return p },
			wantErr: "has finished (Succeeded)"},
		{name: "container waiting", pod: func() *corev1.Pod {
			p := runningPod("web", "app")
			p.Status.ContainerStatuses[0].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}
			return p
		}, wantErr: "is not running (waiting: CrashLoopBackOff)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, defaulted, err := targetFromPod(tt.pod(), tt.container)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("target (-want +got):\n%s", diff)
			}
			if (defaulted != "") != tt.wantDefaulted {
				t.Errorf("defaulted = %q, want a message: %v", defaulted, tt.wantDefaulted)
			}
		})
	}
}

func TestByNode(t *testing.T) {
	ts := []wire.Target{{Node: "n2", Pod: "a"}, {Node: "n1", Pod: "b"}, {Node: "n2", Pod: "c"}}
	nodes, groups := byNode(ts)
	if diff := cmp.Diff([]string{"n1", "n2"}, nodes); diff != "" {
		t.Errorf("nodes (-want +got):\n%s", diff)
	}
	if got := len(groups["n2"]); got != 2 || groups["n2"][0].Pod != "a" || groups["n2"][1].Pod != "c" {
		t.Errorf("n2 group = %+v", groups["n2"])
	}
}
