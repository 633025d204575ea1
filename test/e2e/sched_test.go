//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// textLine is the text output's shape: time, [cpu], traced comm-pid, event.
var textLine = regexp.MustCompile(`^\d+\.\d{6} \[\d{3}\] (.+)-(\d+) (\w+): `)

// tracedComms counts the traced tasks' names per text line.
func tracedComms(t *testing.T, data string) (map[string]int, map[string]int) {
	t.Helper()
	comms, events := map[string]int{}, map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := textLine.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("stdout holds a line that is not trace data: %q", sc.Text())
		}
		comms[m[1]]++
		events[m[3]]++
	}
	return comms, events
}

func TestSchedTraceIsScopedToTheTarget(t *testing.T) {
	workloadPod(t, "alpha", "ktalpha")
	workloadPod(t, "bravo", "ktbravo")

	// stdout goes to a file, as a user's `> sched.txt` would.
	file := filepath.Join(t.TempDir(), "sched.txt")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	cmd := traceCmd("pod/alpha", "--hook", "sched", "--duration", "5s")
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = f, &stderr
	err = cmd.Run()
	f.Close()
	t.Logf("stderr:\n%s", stderr.String())
	if err != nil {
		t.Fatalf("kubectl trace pod/alpha --duration 5s: %v", err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	comms, events := tracedComms(t, string(data))
	t.Logf("traced tasks: %v; events: %v", comms, events)
	if comms["ktalpha"] == 0 {
		t.Errorf("no event of the target's process ktalpha in %d bytes of trace", len(data))
	}
	if n := comms["ktbravo"]; n != 0 {
		t.Errorf("the other pod's process ktbravo is the traced task in %d events", n)
	}
	for _, e := range []string{"sched_switch", "sched_wakeup", "sched_process_fork", "sched_process_exec", "sched_process_exit"} {
		if events[e] == 0 {
			t.Errorf("no %s event: the workload forks and execs a child every second", e)
		}
	}
	if !summaryRow(stderr.String(), "alpha/app", "duration reached") {
		t.Errorf("no final summary on stderr")
	}
	assertClean(t, stderr.String())
}

func TestSchedJSONCarriesTheTarget(t *testing.T) {
	workloadPod(t, "alpha", "ktalpha")
	workloadPod(t, "bravo", "ktbravo")
	r := trace(t, "pod/alpha", "--hook", "sched", "--duration", "3s", "-o", "json")
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var e wire.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("stdout line is not a JSON event: %q: %v", line, err)
		}
		if e.Pod != "alpha" || e.Namespace != namespace || e.Container != "app" || e.Node != nodeName {
			t.Fatalf("event names the wrong target: %+v", e)
		}
		if e.Comm == "ktbravo" {
			t.Fatalf("the other pod's process is the traced task: %+v", e)
		}
		n++
	}
	if n == 0 {
		t.Fatal("no events")
	}
	assertClean(t, r.stderr)
}

// startTrace starts an unbounded trace and waits until it streams.
func startTrace(t *testing.T, pod string) (*os.Process, <-chan int, *syncBuffer) {
	t.Helper()
	cmd := traceCmd("pod/"+pod, "--hook", "sched")
	stderr := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = nil, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() {
		err := cmd.Wait()
		code := 0
		if cmd.ProcessState != nil {
			code = cmd.ProcessState.ExitCode()
		} else if err != nil {
			code = -1
		}
		done <- code
	}()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(stderr.String(), "tracing with hook sched") {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("the trace did not start within 60s:\n%s", stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return cmd.Process, done, stderr
}

func TestSIGINTEndsTheTraceAndCleansUp(t *testing.T) {
	workloadPod(t, "alpha", "ktalpha")
	proc, done, stderr := startTrace(t, "alpha")
	start := time.Now()
	if err := proc.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		took := time.Since(start)
		t.Logf("exit %d after SIGINT in %s\n%s", code, took, stderr)
		if took > 3*time.Second {
			t.Errorf("SIGINT took %s to end the trace, want at most 3s", took)
		}
		if code != 0 {
			t.Errorf("exit code %d after SIGINT, want 0", code)
		}
	case <-time.After(30 * time.Second):
		_ = proc.Kill()
		t.Fatalf("still running 30s after SIGINT:\n%s", stderr)
	}
	if !summaryRow(stderr.String(), "alpha/app", "interrupted") {
		t.Errorf("no final summary after SIGINT:\n%s", stderr)
	}
	assertClean(t, stderr.String())
}

func TestSIGKILLedPluginLeavesAHelperThatEndsItself(t *testing.T) {
	workloadPod(t, "alpha", "ktalpha")
	proc, done, stderr := startTrace(t, "alpha")
	if err := proc.Kill(); err != nil {
		t.Fatal(err)
	}
	<-done
	killed := time.Now()
	pods := helperPods(t)
	if len(pods) != 1 {
		t.Fatalf("want the one helper the killed plugin left, found %d", len(pods))
	}
	helper := pods[0]
	for {
		p, err := client.CoreV1().Pods(helper.Namespace).Get(context.Background(), helper.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			t.Logf("helper reached %s %s after the plugin was killed", p.Status.Phase, time.Since(killed).Round(time.Millisecond))
			if p.Status.Phase != corev1.PodSucceeded {
				t.Errorf("helper ended %s, want Succeeded (a clean stop on stdin EOF)", p.Status.Phase)
			}
			break
		}
		if time.Since(killed) > 30*time.Second {
			t.Fatalf("helper still %s 30s after the plugin was killed", p.Status.Phase)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if left := instances(t, stderr.String()); len(left) != 0 {
		t.Errorf("the helper ended but left tracefs instances: %v", left)
	}
	// The finished helper pod stays until cleanup removes it.
	r := trace(t, "cleanup")
	if r.code != 0 || !strings.Contains(r.stdout, helper.Name) {
		t.Errorf("cleanup: exit %d, stdout %q; want %s deleted", r.code, r.stdout, helper.Name)
	}
	assertClean(t, stderr.String())
}

func waitPhase(t *testing.T, name string, phase corev1.PodPhase) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		p, err := client.CoreV1().Pods(namespace).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil && p.Status.Phase == phase {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("pod %s did not reach %s", name, phase)
}

// summaryRow finds the final summary's row for target, ended as want, with
// a non-zero event count.
func summaryRow(stderr, target, ended string) bool {
	for _, line := range strings.Split(stderr, "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && strings.HasSuffix(f[0], target) && f[1] == "sched" && f[2] != "0" && strings.Contains(line, ended) {
			return true
		}
	}
	return false
}
