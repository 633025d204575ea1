//go:build e2e

package e2e

// Helpers shared by the reliability tests (badinput_test.go, rbac_test.go,
// faults_test.go, soak_test.go). Names start with rel so that they never
// collide with the other test files' helpers.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
)

// relNamespace creates an extra namespace (name: the suite's namespace plus
// suffix) with labels, deleted when the test ends.
func relNamespace(t *testing.T, suffix string, labels map[string]string) string {
	t.Helper()
	name := namespace + "-" + suffix
	_, err := client.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))})
	})
	// The namespace's ServiceAccount admission needs the default SA.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := client.CoreV1().ServiceAccounts(name).Get(context.Background(), "default", metav1.GetOptions{}); err == nil {
			return name
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("namespace %s has no default ServiceAccount after 30s", name)
	return ""
}

// relSpinPod starts `<comm> spin` (the workload's light default) in ns on
// the node, with labels, and waits until it runs.
func relSpinPod(t *testing.T, ns, name, comm string, labels map[string]string) *corev1.Pod {
	t.Helper()
	return relCreateRunning(t, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: corev1.PodSpec{
			NodeName:                      nodeName,
			TerminationGracePeriodSeconds: ptr.To(int64(1)),
			Containers: []corev1.Container{{
				Name: "app", Image: workloadImage, ImagePullPolicy: corev1.PullNever,
				Command: []string{"/usr/bin/" + comm, "spin"},
			}},
		},
	})
}

// relCreateRunning creates pod (in its own namespace) and waits until its
// containers run.
func relCreateRunning(t *testing.T, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	if _, err := client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	deadline := time.Now().Add(120 * time.Second)
	for time.Now().Before(deadline) {
		p, err := client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err == nil && p.Status.Phase == corev1.PodRunning && relAllRunning(p) {
			return p
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("pod %s/%s did not run within 120s", pod.Namespace, pod.Name)
	return nil
}

func relAllRunning(p *corev1.Pod) bool {
	if len(p.Status.ContainerStatuses) != len(p.Spec.Containers) {
		return false
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Running == nil || cs.ContainerID == "" {
			return false
		}
	}
	return true
}

// relDeletePods deletes pods by name in the suite's namespace, now.
func relDeletePods(names ...string) {
	for _, n := range names {
		_ = client.CoreV1().Pods(namespace).Delete(context.Background(), n, metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))})
	}
}

// relPodSnapshot describes the pods of namespaces: name, UID and the number
// of ephemeral containers of each, so that a before/after comparison sees a
// pod replaced or an ephemeral container added.
func relPodSnapshot(t *testing.T, namespaces ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, ns := range namespaces {
		list, err := client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range list.Items {
			out[ns+"/"+p.Name] = fmt.Sprintf("uid=%s ephemeral=%d", p.UID, len(p.Spec.EphemeralContainers))
		}
	}
	return out
}

func relDiffSnapshots(before, after map[string]string) []string {
	var diff []string
	for k, v := range before {
		if a, ok := after[k]; !ok {
			diff = append(diff, "gone: "+k)
		} else if a != v {
			diff = append(diff, fmt.Sprintf("changed: %s (%s -> %s)", k, v, a))
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			diff = append(diff, "new: "+k)
		}
	}
	sort.Strings(diff)
	return diff
}

// relPodWatch records every pod created in a set of namespaces while it
// runs: a pod created and deleted again by a command is invisible to a
// before/after comparison, not to a watch.
type relPodWatch struct {
	mu      sync.Mutex
	added   []string
	ephem   []string
	stops   []func()
	started time.Time
}

func relWatchPods(t *testing.T, namespaces ...string) *relPodWatch {
	t.Helper()
	w := &relPodWatch{started: time.Now()}
	for _, ns := range namespaces {
		list, err := client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		known := map[string]int{}
		for _, p := range list.Items {
			known[string(p.UID)] = len(p.Spec.EphemeralContainers)
		}
		wi, err := client.CoreV1().Pods(ns).Watch(context.Background(), metav1.ListOptions{ResourceVersion: list.ResourceVersion})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ev := range wi.ResultChan() {
				p, ok := ev.Object.(*corev1.Pod)
				if !ok {
					continue
				}
				w.mu.Lock()
				switch ev.Type {
				case watch.Added:
					w.added = append(w.added, p.Namespace+"/"+p.Name)
				case watch.Modified:
					if n, ok := known[string(p.UID)]; ok && len(p.Spec.EphemeralContainers) > n {
						w.ephem = append(w.ephem, p.Namespace+"/"+p.Name)
					}
				}
				w.mu.Unlock()
			}
		}()
		w.stops = append(w.stops, func() { wi.Stop(); <-done })
	}
	return w
}

// stop ends the watch, after a moment for the last events to arrive, and
// returns the pods added and the pods given an ephemeral container.
func (w *relPodWatch) stop() (added, ephemeral []string) {
	time.Sleep(500 * time.Millisecond)
	for _, s := range w.stops {
		s()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.added...), append([]string(nil), w.ephem...)
}

// relHelperPodsIn lists helper pods in the given namespaces (never beyond:
// other engineers' sessions run on the same cluster).
func relHelperPodsIn(t *testing.T, namespaces ...string) []string {
	t.Helper()
	var out []string
	for _, ns := range namespaces {
		list, err := client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: helperLabel})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range list.Items {
			out = append(out, p.Namespace+"/"+p.Name+" ("+string(p.Status.Phase)+")")
		}
	}
	return out
}

// relSessionIDs returns every session id named in a run's stderr.
func relSessionIDs(stderr string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range sessionRE.FindAllStringSubmatch(stderr, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			out = append(out, m[1])
		}
	}
	return out
}

// relInstancesOf lists the tracefs instances of the given sessions.
func relInstancesOf(t *testing.T, sessions []string) []string {
	t.Helper()
	var out []string
	for _, s := range sessions {
		m, err := filepath.Glob(filepath.Join(tracefs, "instances", "kubectl-trace-"+s+"-*"))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m...)
	}
	return out
}

// relWaitNoInstances waits up to d for the sessions' tracefs instances to
// go (a helper ended by SIGKILL of the plugin removes them as it ends).
func relWaitNoInstances(t *testing.T, sessions []string, d time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		left := relInstancesOf(t, sessions)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// ---- running the plugin in the background

// relCounter counts the bytes and lines written to it, and keeps lines that
// start with one of the prefixes it watches (pod/container of framed text).
type relCounter struct {
	bytes atomic.Int64
	mu    sync.Mutex
	part  []byte
	lines map[string]int // by prefix "pod/container"
}

func (c *relCounter) Write(p []byte) (int, error) {
	c.bytes.Add(int64(len(p)))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lines == nil {
		c.lines = map[string]int{}
	}
	data := append(c.part, p...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		line := data[:i]
		data = data[i+1:]
		// The first field of a framed text line is pod/container.
		if sp := bytes.IndexByte(line, ' '); sp > 0 && bytes.Count(line[:sp], []byte("/")) == 1 {
			c.lines[string(line[:sp])]++
		}
	}
	// Keep the partial line, bounded: data lines are short.
	if len(data) > 1<<20 {
		data = nil
	}
	c.part = append(c.part[:0], data...)
	return len(p), nil
}

func (c *relCounter) linesOf(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lines[prefix]
}

// relRunning is a `kubectl trace` started in the background.
type relRunning struct {
	cmd     *exec.Cmd
	stderr  *syncBuffer
	stdout  *relCounter
	done    chan struct{}
	code    int
	started time.Time
	ended   time.Time
}

// relStart starts `kubectl trace -n <suite ns> ARGS` with stdout counted
// and discarded.
func relStart(t *testing.T, args ...string) *relRunning {
	t.Helper()
	return relStartCmd(t, traceCmd(args...))
}

func relStartCmd(t *testing.T, cmd *exec.Cmd) *relRunning {
	t.Helper()
	r := &relRunning{cmd: cmd, stderr: &syncBuffer{}, stdout: &relCounter{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = r.stdout, r.stderr
	r.started = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		r.code = cmd.ProcessState.ExitCode()
		r.ended = time.Now()
		close(r.done)
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			_ = cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

// waitFor waits until stderr contains s; false when the command ended or d
// passed first.
func (r *relRunning) waitFor(s string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !strings.Contains(r.stderr.String(), s) {
		select {
		case <-r.done:
			return strings.Contains(r.stderr.String(), s)
		default:
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// waitAttached waits until the helper streams.
func (r *relRunning) waitAttached(t *testing.T, d time.Duration) {
	t.Helper()
	if !r.waitFor("attached: tracing with hook", d) {
		_ = r.cmd.Process.Kill()
		<-r.done
		t.Fatalf("the trace did not attach within %s (exit %d):\n%s", d, r.code, r.stderr)
	}
}

// wait waits up to d for the command to end; false if it still runs.
func (r *relRunning) wait(d time.Duration) bool {
	select {
	case <-r.done:
		return true
	case <-time.After(d):
		return false
	}
}

func (r *relRunning) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// helperPod returns the session's (first) helper pod name, from stderr.
func (r *relRunning) helperPod(t *testing.T) string {
	t.Helper()
	ids := relSessionIDs(r.stderr.String())
	if len(ids) == 0 {
		t.Fatalf("no session id in stderr:\n%s", r.stderr)
	}
	return "kubectl-trace-" + ids[0]
}

// ---- the node's view: processes, capabilities, BPF programs

// relPIDsOfContainer finds the node's processes in the container whose
// runtime id is given (the part after containerd://), by their cgroup.
func relPIDsOfContainer(id string) []int {
	var out []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cgroup"))
		if err == nil && strings.Contains(string(b), id) {
			out = append(out, pid)
		}
	}
	return out
}

func relComm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

// relBPFProgs lists the ids of every BPF program loaded in the kernel.
func relBPFProgs(t *testing.T) map[int]string {
	t.Helper()
	out, err := exec.Command("bpftool", "-j", "prog", "show").Output()
	if err != nil {
		t.Fatalf("bpftool prog show: %v", err)
	}
	var progs []struct {
		ID   int    `json:"id"`
		Type string `json:"type"`
		Name string `json:"name"`
	}
	if err := json.Unmarshal(out, &progs); err != nil {
		t.Fatalf("bpftool prog show: %v: %s", err, out)
	}
	m := map[int]string{}
	for _, p := range progs {
		m[p.ID] = p.Type + "/" + p.Name
	}
	return m
}

var podUIDInCgroup = regexp.MustCompile(`pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})`)

// relBPFHolders maps BPF program ids to the pods whose processes hold them
// (a program fd or a link fd), "" for a holder outside any pod.
func relBPFHolders() map[int][]string {
	holders := map[int][]string{}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		fds, err := os.ReadDir(filepath.Join("/proc", d.Name(), "fd"))
		if err != nil {
			continue
		}
		pod := ""
		podRead := false
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join("/proc", d.Name(), "fd", fd.Name()))
			if err != nil || (link != "anon_inode:bpf-prog" && link != "anon_inode:bpf_link") {
				continue
			}
			info, err := os.Open(filepath.Join("/proc", d.Name(), "fdinfo", fd.Name()))
			if err != nil {
				continue
			}
			sc := bufio.NewScanner(info)
			for sc.Scan() {
				if v, ok := strings.CutPrefix(sc.Text(), "prog_id:"); ok {
					id, _ := strconv.Atoi(strings.TrimSpace(v))
					if !podRead {
						podRead = true
						if b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cgroup")); err == nil {
							if m := podUIDInCgroup.FindStringSubmatch(string(b)); m != nil {
								pod = strings.ReplaceAll(m[1], "_", "-")
							}
						}
					}
					holders[id] = append(holders[id], pod)
				}
			}
			info.Close()
		}
	}
	return holders
}

// relPodNamespaces maps every pod UID in the cluster to its namespace.
func relPodNamespaces(t *testing.T) map[string]string {
	t.Helper()
	list, err := client.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, p := range list.Items {
		m[string(p.UID)] = p.Namespace
	}
	return m
}

// relNewBPFProgs returns the BPF programs loaded now that were not loaded
// in before and that are not held by a process of a pod in a namespace
// outside mine (other engineers trace on the same node): what is left is
// either held by my sessions' helpers or by nobody, which is a leak once
// the sessions ended. foreign counts the programs set aside.
func relNewBPFProgs(t *testing.T, before map[int]string, mine map[string]bool) (leaked []string, foreign int, total int) {
	t.Helper()
	now := relBPFProgs(t)
	holders := relBPFHolders()
	podNS := relPodNamespaces(t)
	for id, desc := range now {
		if _, ok := before[id]; ok {
			continue
		}
		isForeign := false
		var who []string
		for _, uid := range holders[id] {
			ns, known := podNS[uid]
			switch {
			case uid == "":
				who = append(who, "a process outside any pod")
			case known && !mine[ns]:
				isForeign = true
			default:
				who = append(who, "pod "+uid+" in "+ns)
			}
		}
		if isForeign {
			foreign++
			continue
		}
		if len(who) == 0 {
			who = []string{"no process"}
		}
		leaked = append(leaked, fmt.Sprintf("prog %d %s held by %s", id, desc, strings.Join(who, ", ")))
	}
	sort.Strings(leaked)
	return leaked, foreign, len(now)
}

// relSignal sends sig to the running command.
func (r *relRunning) signal(sig syscall.Signal) error {
	return r.cmd.Process.Signal(sig)
}

var _ io.Writer = (*relCounter)(nil)

// relAssertClean is assertClean scoped to what this run can own: helper
// pods in the suite's namespace, and the tracefs instances of the sessions
// that stderr names. (assertClean looks at every kubectl-trace-* instance
// when stderr names no session, which on a shared node includes other
// engineers' live sessions.)
func relAssertClean(t *testing.T, stderr string) {
	t.Helper()
	if left := relHelperPodsIn(t, namespace); len(left) != 0 {
		t.Errorf("helper pods left behind: %v", left)
	}
	if left := relInstancesOf(t, relSessionIDs(stderr)); len(left) != 0 {
		t.Errorf("tracefs instances left behind: %v", left)
	}
}
