//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// serverPod runs the workload's TCP server on port in a pod of its own.
func serverPod(t *testing.T, name, comm, port string, labels map[string]string) *corev1.Pod {
	t.Helper()
	return createAndWait(t, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels},
		Spec: corev1.PodSpec{
			NodeName:                      nodeName,
			TerminationGracePeriodSeconds: ptr.To(int64(1)),
			Containers: []corev1.Container{{
				Name: "app", Image: workloadImage, ImagePullPolicy: corev1.PullNever,
				Command: []string{"/usr/bin/" + comm, "serve", ":" + port},
			}},
		},
	})
}

func TestExecRunsToolsInThePodsNamespaces(t *testing.T) {
	pod := serverPod(t, "server", "ktalpha", "8080", nil)

	r := trace(t, "exec", "pod/server", "--", "ip", "-o", "addr")
	if r.code != 0 {
		t.Fatalf("ip -o addr: exit %d", r.code)
	}
	if !strings.Contains(r.stdout, " "+pod.Status.PodIP+"/") {
		t.Errorf("ip -o addr does not show the pod's IP %s:\n%s", pod.Status.PodIP, r.stdout)
	}

	r = trace(t, "exec", "pod/server", "--", "ss", "-tln")
	if r.code != 0 || !strings.Contains(r.stdout, ":8080") {
		t.Errorf("ss -tln: exit %d, want the listener on :8080:\n%s", r.code, r.stdout)
	}

	r = trace(t, "exec", "pod/server", "--", "sh", "-c", "echo to-stderr >&2; exit 7")
	if r.code != 7 {
		t.Errorf("a failing tool: exit %d, want its code 7", r.code)
	}
	if !strings.Contains(r.stderr, "to-stderr") {
		t.Errorf("the tool's stderr did not come back: %q", r.stderr)
	}

	// The UTS namespace shows the pod's hostname: the namespaces really are
	// the pod's, not the helper's.
	r = trace(t, "exec", "pod/server", "--ns", "uts", "--", "hostname")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "server" {
		t.Errorf("hostname in the pod's UTS namespace = %q (exit %d), want server", r.stdout, r.code)
	}
	assertClean(t, r.stderr)
}

func TestExecInEveryPodOfASelectorPrefixesOutput(t *testing.T) {
	serverPod(t, "multi-1", "ktalpha", "8081", map[string]string{"role": "multi"})
	serverPod(t, "multi-2", "ktbravo", "8082", map[string]string{"role": "multi"})
	r := trace(t, "exec", "-l", "role=multi", "--", "ss", "-tln")
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	for _, want := range []string{"multi-1/app ", "multi-2/app "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("no line prefixed %q:\n%s", want, r.stdout)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if strings.HasPrefix(line, "multi-1/app ") && strings.Contains(line, ":8082") ||
			strings.HasPrefix(line, "multi-2/app ") && strings.Contains(line, ":8081") {
			t.Errorf("a pod shows the other pod's listener: %q", line)
		}
	}
	_ = client.CoreV1().Pods(namespace).DeleteCollection(context.Background(), metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "role=multi"})
	assertClean(t, r.stderr)
}
