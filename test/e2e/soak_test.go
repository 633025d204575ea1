//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// relSoakHooks are the hooks the soak cycles through: ftrace (a tracefs
// instance each) and eBPF (programs each).
var relSoakHooks = []string{"sched", "syscalls", "exec", "open", "syscall-top"}

// relSoakArgs makes the arguments of one session, with filters that keep
// the volume sane on a shared 2-core node.
func relSoakArgs(t *testing.T, pod, hook string) []string {
	args := []string{"pod/" + pod, "--hook", hook}
	if hook == "syscalls" {
		args = append(args, "--arg", "syscalls=clock_nanosleep,nanosleep,execve,openat,read,write")
	}
	return args
}

type relSoakRun struct {
	i              int
	hook, end, pod string
	attach, total  time.Duration
	code           int
	sessions       []string
	err            string
}

func TestSoak(t *testing.T) {
	const (
		pods       = 5
		sequential = 50
		concurrent = 20
	)
	t0 := time.Now()
	var targets []string
	for i := 0; i < pods; i++ {
		name := fmt.Sprintf("soak-%d", i)
		relSpinPod(t, namespace, name, []string{"ktalpha", "ktbravo", "ktdemo", "ktnoise"}[i%4], nil)
		targets = append(targets, name)
		t.Cleanup(func() { relDeletePods(name) })
	}
	mine := map[string]bool{namespace: true}
	bpfBefore := relBPFProgs(t)
	t.Logf("setup %s; %d BPF programs loaded on the node before", time.Since(t0).Round(time.Millisecond), len(bpfBefore))

	var all []string // every session id
	var mu sync.Mutex
	record := func(ids []string) {
		mu.Lock()
		all = append(all, ids...)
		mu.Unlock()
	}

	// ---- 50 sequential sessions: every hook with every ending.
	seqStart := time.Now()
	var runs []relSoakRun
	for i := 0; i < sequential; i++ {
		hook := relSoakHooks[i%len(relSoakHooks)]
		end := []string{"duration", "sigint", "sigkill"}[(i/len(relSoakHooks))%3]
		pod := targets[(i+i/len(relSoakHooks))%pods]
		run := relSoakRun{i: i, hook: hook, end: end, pod: pod}
		start := time.Now()
		args := relSoakArgs(t, pod, hook)
		if end == "duration" {
			args = append(args, "--duration", "1s")
		}
		r := relStartCmd(t, traceCmd(args...))
		if !r.waitFor("attached: tracing with hook", 90*time.Second) {
			_ = r.cmd.Process.Kill()
			<-r.done
			run.err = "did not attach within 90s"
		}
		run.attach = time.Since(start)
		if run.err == "" {
			switch end {
			case "duration":
				if !r.wait(60 * time.Second) {
					run.err = "still running 60s after attaching with --duration 1s"
				}
			case "sigint":
				time.Sleep(500 * time.Millisecond)
				_ = r.signal(syscall.SIGINT)
				if !r.wait(30 * time.Second) {
					run.err = "still running 30s after SIGINT"
				}
			case "sigkill":
				time.Sleep(500 * time.Millisecond)
				_ = r.signal(syscall.SIGKILL)
				r.wait(10 * time.Second)
				c := trace(t, "cleanup")
				if c.code != 0 {
					run.err = fmt.Sprintf("cleanup exit %d: %s", c.code, c.stderr)
				}
			}
		}
		if run.err != "" {
			_ = r.cmd.Process.Kill()
			<-r.done
		}
		run.code = r.code
		run.total = time.Since(start)
		run.sessions = relSessionIDs(r.stderr.String())
		record(run.sessions)
		if run.err == "" && end != "sigkill" && r.code != 0 {
			run.err = fmt.Sprintf("exit %d: %s", r.code, relLastLines(r.stderr.String(), 3))
		}
		if left := relHelperPodsIn(t, namespace); len(left) != 0 && run.err == "" {
			run.err = fmt.Sprintf("helper pods left: %v", left)
			trace(t, "cleanup")
		}
		if run.err != "" {
			t.Errorf("session %d (%s, %s, %s): %s\n%s", i, hook, end, pod, run.err, r.stderr)
		}
		runs = append(runs, run)
	}
	seqTook := time.Since(seqStart)
	relLogRuns(t, "sequential", runs, seqTook)

	// ---- 20 concurrent sessions on the node, 4 on each of the 5 pods.
	concStart := time.Now()
	conc := make([]relSoakRun, concurrent)
	var wg sync.WaitGroup
	for i := 0; i < concurrent; i++ {
		hook := relSoakHooks[i%len(relSoakHooks)]
		pod := targets[i%pods]
		conc[i] = relSoakRun{i: i, hook: hook, end: "duration", pod: pod}
		wg.Add(1)
		go func() {
			defer wg.Done()
			run := &conc[i]
			start := time.Now()
			args := append(relSoakArgs(t, pod, hook), "--duration", "10s", "--start-timeout", "4m")
			r := relStartCmd(t, traceCmd(args...))
			if r.waitFor("attached: tracing with hook", 4*time.Minute) {
				run.attach = time.Since(start)
			}
			if !r.wait(5 * time.Minute) {
				run.err = "still running after 5 min"
				_ = r.cmd.Process.Kill()
				<-r.done
			}
			run.total = time.Since(start)
			run.code = r.code
			run.sessions = relSessionIDs(r.stderr.String())
			record(run.sessions)
			if run.err == "" && r.code != 0 {
				run.err = fmt.Sprintf("exit %d: %s", r.code, relLastLines(r.stderr.String(), 3))
			}
			if run.err == "" && !strings.Contains(r.stderr.String(), "duration reached") {
				run.err = "no 'duration reached' in the summary"
			}
			if run.err != "" {
				t.Errorf("concurrent session %d (%s, %s): %s\n%s", i, hook, pod, run.err, r.stderr)
			}
		}()
	}
	wg.Wait()
	concTook := time.Since(concStart)
	relLogRuns(t, "concurrent", conc, concTook)

	// ---- Afterwards: nothing left.
	if left := relHelperPodsIn(t, namespace); len(left) != 0 {
		t.Errorf("helper pods left after the soak: %v", left)
	}
	if len(all) < sequential+concurrent {
		t.Errorf("only %d session ids seen in %d sessions", len(all), sequential+concurrent)
	}
	if left := relWaitNoInstances(t, all, 10*time.Second); len(left) != 0 {
		t.Errorf("%d tracefs instances of the soak's sessions left: %v", len(left), left)
	}
	// BPF programs are freed with their last reference, some of them by
	// the kernel a moment later: wait up to 10 s.
	deadline := time.Now().Add(10 * time.Second)
	for {
		leaked, foreign, total := relNewBPFProgs(t, bpfBefore, mine)
		if len(leaked) == 0 || time.Now().After(deadline) {
			t.Logf("BPF programs on the node: %d before, %d after (%d new ones held by other namespaces' pods, set aside)", len(bpfBefore), total, foreign)
			if len(leaked) != 0 {
				t.Errorf("%d BPF programs loaded during the soak remain: %s", len(leaked), strings.Join(leaked, "; "))
			}
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("soak: %d sequential in %s, %d concurrent in %s, %s in all",
		sequential, seqTook.Round(time.Second), concurrent, concTook.Round(time.Second), time.Since(t0).Round(time.Second))
}

func relLogRuns(t *testing.T, what string, runs []relSoakRun, took time.Duration) {
	t.Helper()
	var b strings.Builder
	var attaches []time.Duration
	for _, r := range runs {
		fmt.Fprintf(&b, "  %-3d %-11s %-8s %-7s attach %6s total %6s exit %d %s\n", r.i, r.hook, r.end, r.pod,
			r.attach.Round(10*time.Millisecond), r.total.Round(10*time.Millisecond), r.code, r.err)
		if r.attach > 0 {
			attaches = append(attaches, r.attach)
		}
	}
	sort.Slice(attaches, func(i, j int) bool { return attaches[i] < attaches[j] })
	if n := len(attaches); n > 0 {
		fmt.Fprintf(&b, "  time to attach: min %s, median %s, max %s\n", attaches[0].Round(10*time.Millisecond),
			attaches[n/2].Round(10*time.Millisecond), attaches[n-1].Round(10*time.Millisecond))
	}
	t.Logf("%s: %d sessions in %s\n%s", what, len(runs), took.Round(time.Millisecond), b.String())
	fmt.Fprintf(os.Stderr, "soak %s: %d sessions in %s\n", what, len(runs), took.Round(time.Millisecond))
}

func relLastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
