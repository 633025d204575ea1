//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

const extraNode = "ktrace-e2e-node2"

// addNode joins a second node to the cluster for the test, in network,
// mount and UTS namespaces of its own, and removes it afterwards.
func addNode(t *testing.T) {
	t.Helper()
	script, _ := filepath.Abs("../../hack/cluster/add-node.sh")
	remove, _ := filepath.Abs("../../hack/cluster/remove-node.sh")
	// The node has a PID namespace of its own, as a node in a VM or behind
	// a container runtime (kind) does to a tracer that shares the kernel:
	// its helper's host PIDs are not the kernel's, and the tracer
	// translates them for the PID-filtered hooks (ftrace).
	cmd := exec.Command(script, extraNode)
	cmd.Env = append(os.Environ(), "KTRACE_NODE_PIDNS=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("adding node %s: %v\n%s", extraNode, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(remove, extraNode).CombinedOutput(); err != nil {
			t.Errorf("removing node %s: %v\n%s", extraNode, err, out)
		}
	})
}

// deployment runs replicas of the workload under comm, spread over the
// nodes (the extra node's taint is tolerated).
func deployment(t *testing.T, name, comm string, replicas int32) {
	t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To(int64(1)),
					Tolerations:                   []corev1.Toleration{{Key: "ktrace.dev/extra-node", Operator: corev1.TolerationOpExists}},
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
						MaxSkew: 1, TopologyKey: "kubernetes.io/hostname", WhenUnsatisfiable: corev1.DoNotSchedule,
						LabelSelector: &metav1.LabelSelector{MatchLabels: labels},
					}},
					Containers: []corev1.Container{{Name: "app", Image: workloadImage, ImagePullPolicy: corev1.PullNever,
						Command: []string{"/usr/bin/" + comm, "spin"}}},
				},
			},
		},
	}
	if _, err := client.AppsV1().Deployments(namespace).Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRunningPods(t, "app="+name, int(replicas))
}

// waitRunningPods waits until n pods of the selector run, and returns them.
func waitRunningPods(t *testing.T, selector string, n int) []corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for {
		list, err := client.CoreV1().Pods(namespace).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			t.Fatal(err)
		}
		var running []corev1.Pod
		for _, p := range list.Items {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				running = append(running, p)
			}
		}
		if len(running) == n {
			return running
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d pods of %s run after 120s, want %d", len(running), selector, n)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// waitFor waits until stderr contains want.
func waitFor(t *testing.T, stderr *syncBuffer, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(stderr.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("stderr lacks %q after %s:\n%s", want, timeout, stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestFanOutSelectorAcrossNodesWithJoinsAndLeaves(t *testing.T) {
	addNode(t)
	deployment(t, "a", "ktalpha", 3)
	deployment(t, "b", "ktbravo", 3)
	workloadPod(t, "noise", "ktnoise")
	aPods := waitRunningPods(t, "app=a", 3)
	nodesOfA := map[string]bool{}
	for _, p := range aPods {
		nodesOfA[p.Spec.NodeName] = true
	}
	if len(nodesOfA) != 2 {
		t.Fatalf("deployment a is on %d node(s), want both", len(nodesOfA))
	}

	dir := t.TempDir()
	cmd := traceCmd("-l", "app=a", "--hook", "sched", "-o", "json", "--output-dir", dir)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() { _ = cmd.Wait(); done <- cmd.ProcessState.ExitCode() }()
	defer func() { _ = cmd.Process.Kill() }()
	waitFor(t, stderr, "tracing with hook sched", 90*time.Second)

	// ONE helper per node that runs an a-pod, pinned to that node.
	helpers := helperPods(t)
	helperNodes := map[string]int{}
	for _, h := range helpers {
		helperNodes[h.Spec.NodeName]++
	}
	if len(helpers) != 2 || helperNodes[nodeName] != 1 || helperNodes[extraNode] != 1 {
		t.Errorf("helpers by node = %v, want one on %s and one on %s", helperNodes, nodeName, extraNode)
	}

	// A fourth pod joins, announced; then an original one leaves.
	scale, err := client.AppsV1().Deployments(namespace).GetScale(context.Background(), "a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scale.Spec.Replicas = 4
	if _, err := client.AppsV1().Deployments(namespace).UpdateScale(context.Background(), "a", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	all := waitRunningPods(t, "app=a", 4)
	var fourth string
	for _, p := range all {
		isNew := true
		for _, o := range aPods {
			isNew = isNew && o.Name != p.Name
		}
		if isNew {
			fourth = p.Name
		}
	}
	waitFor(t, stderr, "+ pod "+namespace+"/"+fourth+" joined", 30*time.Second)
	time.Sleep(3 * time.Second)
	gone := aPods[0].Name
	if err := client.CoreV1().Pods(namespace).Delete(context.Background(), gone, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, stderr, "- pod "+namespace+"/"+gone+" left", 30*time.Second)
	time.Sleep(2 * time.Second)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after SIGINT:\n%s", code, stderr)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("still running 60s after SIGINT:\n%s", stderr)
	}
	t.Logf("stderr:\n%s", stderr)

	// One file per a-pod (the one that left included), each holding only
	// that pod's events, never b's or the noise pod's. The deleted pod's
	// replacement may join before the stop: a file of its own too.
	files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	joined := strings.Count(stderr.String(), "+ pod "+namespace+"/a-")
	if len(files) != 3+joined || joined < 1 || joined > 2 {
		t.Errorf("output files = %v, want one per a-pod (3 at the start, %d joined)", files, joined)
	}
	for _, p := range append(aPods, corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fourth}}) {
		path := filepath.Join(dir, fmt.Sprintf("%s_%s_app.jsonl", namespace, p.Name))
		n := checkEventsFile(t, path, p.Name)
		if n == 0 {
			t.Errorf("%s: no events", path)
		}
	}
	// The pod that left ended on its own; the others when the trace did.
	if !summaryHas(stderr.String(), namespace+"/"+gone+"/app", "pod deleted") {
		t.Errorf("the summary does not say %s ended with its pod", gone)
	}
	if !summaryHas(stderr.String(), namespace+"/"+fourth+"/app", "interrupted") {
		t.Errorf("the summary does not list the joined pod %s", fourth)
	}
	assertClean(t, stderr.String())
}

// checkEventsFile checks every event in a per-pod file belongs to pod and
// to its process, and returns how many there are.
func checkEventsFile(t *testing.T, path, pod string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Errorf("%v", err)
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e wire.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s: not a JSON event: %q", path, sc.Text())
		}
		if e.Pod != pod || e.Comm == "ktbravo" || e.Comm == "ktnoise" {
			t.Fatalf("%s holds an event of another pod or process: %+v", path, e)
		}
		n++
	}
	return n
}

// summaryHas finds the summary row of target with how it ended.
func summaryHas(stderr, target, ended string) bool {
	for _, line := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), target+" ") && strings.Contains(line, ended) {
			return true
		}
	}
	return false
}
