//go:build e2e

// Package e2e runs `kubectl trace` through kubectl's plugin mechanism against
// the local cluster that `make cluster-up` brings up (KUBECONFIG and PATH are
// set by `make e2e`). Nothing here is faked: a real API server, kubelet,
// containerd and kernel.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
)

const (
	workloadImage = "ktrace.local/workload:v1"
	helperLabel   = "app.kubernetes.io/managed-by=kubectl-trace"
)

var (
	client    kubernetes.Interface
	namespace string
	nodeName  string
	tracefs   string
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	kubeconfig := os.Getenv("KUBECONFIG")
	if kubeconfig == "" {
		return 0, fmt.Errorf("KUBECONFIG is not set: run the tests with 'make e2e'")
	}
	if out, err := exec.Command("kubectl", "trace", "version").CombinedOutput(); err != nil {
		return 0, fmt.Errorf("kubectl does not find the plugin (bin/ on PATH?): %v: %s", err, out)
	}
	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return 0, err
	}
	if client, err = kubernetes.NewForConfig(config); err != nil {
		return 0, err
	}
	ctx := context.Background()
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) == 0 {
		return 0, fmt.Errorf("listing nodes: %v (%d nodes)", err, len(nodes.Items))
	}
	// Pods are pinned to the cluster's first node; extra nodes (added by
	// hack/cluster/add-node.sh for multi-node tests) are used on purpose only.
	nodeName = nodes.Items[0].Name
	for _, n := range nodes.Items {
		if _, extra := n.Labels["ktrace.dev/extra-node"]; !extra {
			nodeName = n.Name
			break
		}
	}
	namespace = "ktrace-e2e-" + rand.String(5)
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		return 0, err
	}
	// Our own view of tracefs: instances are global to the kernel, so any
	// mount shows the helper's instances too.
	if tracefs, err = os.MkdirTemp("", "ktrace-e2e-tracefs-"); err != nil {
		return 0, err
	}
	if err := syscall.Mount("nodev", tracefs, "tracefs", 0, ""); err != nil {
		return 0, fmt.Errorf("mounting tracefs (the e2e tests run as root on the node): %w", err)
	}
	code := m.Run()
	_ = syscall.Unmount(tracefs, 0)
	_ = os.Remove(tracefs)
	_ = client.CoreV1().Namespaces().Delete(ctx, namespace, metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))})
	return code, nil
}

// workloadPod starts a pod whose process has the distinctive name comm
// (the workload image links ktalpha, ktbravo, … to one binary) on the node.
func workloadPod(t *testing.T, name, comm string) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: corev1.PodSpec{
			NodeName:                      nodeName,
			TerminationGracePeriodSeconds: ptr.To(int64(1)),
			Containers: []corev1.Container{{
				Name:            "app",
				Image:           workloadImage,
				ImagePullPolicy: corev1.PullNever,
				Command:         []string{"/usr/bin/" + comm, "spin"},
			}},
		},
	}
	return createAndWait(t, pod)
}

func createAndWait(t *testing.T, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	if _, err := client.CoreV1().Pods(namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		p, err := client.CoreV1().Pods(namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err == nil && p.Status.Phase == corev1.PodRunning {
			return p
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("pod %s did not run within 90s", pod.Name)
	return nil
}

// result is one finished `kubectl trace` run.
type result struct {
	stdout, stderr string
	code           int
	elapsed        time.Duration
}

// trace runs `kubectl trace ARGS -n <test namespace>` to completion.
func trace(t *testing.T, args ...string) result {
	t.Helper()
	cmd := traceCmd(args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errOut.String(), elapsed: time.Since(start)}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("running kubectl trace: %v", err)
		}
		r.code = ee.ExitCode()
	}
	t.Logf("kubectl trace %s: exit %d after %s\nstderr:\n%s", strings.Join(args, " "), r.code, r.elapsed.Round(time.Millisecond), r.stderr)
	return r
}

func traceCmd(args ...string) *exec.Cmd {
	return exec.Command("kubectl", append([]string{"trace", "-n", namespace}, args...)...)
}

// helperPods lists the plugin's helper pods in the test namespace. Other
// sessions may run on the same cluster (developers, parallel suites), so the
// checks never look beyond what this suite created.
func helperPods(t *testing.T) []corev1.Pod {
	t.Helper()
	list, err := client.CoreV1().Pods(namespace).List(context.Background(), metav1.ListOptions{LabelSelector: helperLabel})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// sessionRE finds the session id in the plugin's progress output.
var sessionRE = regexp.MustCompile(`kubectl-trace-([a-z0-9]{5})\b`)

// instances lists the tracefs instances of the sessions named in stderr, or
// of every session when stderr names none.
func instances(t *testing.T, stderr string) []string {
	t.Helper()
	pattern := "kubectl-trace-*"
	if m := sessionRE.FindStringSubmatch(stderr); m != nil {
		pattern = "kubectl-trace-" + m[1] + "-*"
	}
	matches, err := filepath.Glob(filepath.Join(tracefs, "instances", pattern))
	if err != nil {
		t.Fatal(err)
	}
	return matches
}

// assertClean fails when the session whose stderr is given left a helper pod
// or a tracefs instance.
func assertClean(t *testing.T, stderr string) {
	t.Helper()
	if pods := helperPods(t); len(pods) != 0 {
		var names []string
		for _, p := range pods {
			names = append(names, p.Namespace+"/"+p.Name+" ("+string(p.Status.Phase)+")")
		}
		t.Errorf("helper pods left behind: %s", strings.Join(names, ", "))
	}
	if left := instances(t, stderr); len(left) != 0 {
		t.Errorf("tracefs instances left behind: %v", left)
	}
}
