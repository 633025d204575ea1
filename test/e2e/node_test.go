//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hostLoop runs, on the node itself (the e2e tests run there as root),
// a process named comm that execs a copy of sleep named comm in a loop:
// a plain host process, in no pod. Cleanup kills it.
func hostLoop(t *testing.T, comm string) {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile("/bin/sleep")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, comm)
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", "while :; do "+bin+" 0.1; done")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
}

// nodeSession checks what every whole-node session must: exit 0, one
// helper pod on the node, the node's summary row, nothing left behind.
func nodeSession(t *testing.T, r result, hook string) {
	t.Helper()
	sessionClean(t, r.stderr)
	if r.code != 0 {
		t.Fatalf("exit %d, want 0", r.code)
	}
	if n := strings.Count(r.stderr, "creating helper pod"); n != 1 {
		t.Errorf("%d helper pods created, want 1 for the node", n)
	}
	if !strings.Contains(r.stderr, "on node \""+nodeName+"\"") || !strings.Contains(r.stderr, "tracing node/"+nodeName+": the whole node") {
		t.Errorf("stderr does not say the whole node %q is traced", nodeName)
	}
	if !hookSummary(r.stderr, "node/"+nodeName, hook, "duration reached", true) {
		t.Errorf("no summary row for node/%s with events, ended by the duration", nodeName)
	}
}

// TestNodeSched: kubectl trace node/NAME --hook sched shows the tasks of
// two pods and of a host process: every task on the node, none named.
func TestNodeSched(t *testing.T) {
	startPods(t,
		pod("node-alpha", "/usr/bin/ktalpha", "spin"),
		pod("node-bravo", "/usr/bin/ktbravo", "spin"))
	hostLoop(t, "ktnodehost")
	// Text: a busy node makes tens of thousands of events a second.
	r := runTrace(t, nil, "node/"+nodeName, "--hook", "sched", "--duration", "3s")
	nodeSession(t, r, "sched")
	comms := map[string]int{}
	n := 0
	for _, line := range strings.Split(r.stdout, "\n") {
		m := textEvent.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n++
		switch m[3] {
		case "ktalpha", "ktbravo", "ktnodehost":
			comms[m[3]]++
		}
	}
	t.Logf("%d events; of the marked tasks: %v", n, comms)
	for _, c := range []string{"ktalpha", "ktbravo", "ktnodehost"} {
		if comms[c] == 0 {
			t.Errorf("no event of %s, want every task of the node: %v", c, comms)
		}
	}
}

// TestNodeMaxEvents: --max-events stops a whole-node stream after that
// many events, as for a pod, with the helper gone.
func TestNodeMaxEvents(t *testing.T) {
	r := runTrace(t, nil, "node/"+nodeName, "--hook", "sched", "--max-events", "500", "-o", "json", "--duration", "60s")
	sessionClean(t, r.stderr)
	if r.code != 0 {
		t.Fatalf("exit %d, want 0", r.code)
	}
	if evs := parseEvents(t, r.stdout, "json"); len(evs) != 500 {
		t.Errorf("%d events, want exactly --max-events 500", len(evs))
	}
	if r.elapsed > 30*time.Second {
		t.Errorf("took %s: --max-events did not stop the session", r.elapsed)
	}
}

// TestNodeExec: kubectl trace node/NAME --hook exec (eBPF, match_all)
// shows the execs of two pods (each runs its named child every second)
// and of a host process, as JSON events naming the node and no pod.
func TestNodeExec(t *testing.T) {
	startPods(t,
		pod("node-exec-alpha", "/usr/bin/ktalpha", "spin"),
		pod("node-exec-bravo", "/usr/bin/ktbravo", "spin"))
	hostLoop(t, "ktnodehostexec")
	r := runTrace(t, nil, "node/"+nodeName, "--hook", "exec", "--duration", "4s", "-o", "json")
	nodeSession(t, r, "exec")
	evs := parseEvents(t, r.stdout, "json")
	seen := map[string]int{}
	for _, e := range evs {
		if e.Node != nodeName || e.Namespace != "" || e.Pod != "" || e.Container != "" {
			t.Fatalf("event does not name the whole node: %+v", e)
		}
		switch {
		case e.Fields["argv"] == "ktalpha child", e.Fields["argv"] == "ktbravo child":
			seen[e.Fields["argv"]]++
		case strings.HasSuffix(e.Fields["filename"], "/ktnodehostexec"):
			seen["host"]++
		}
	}
	t.Logf("%d events; marked execs: %v", len(evs), seen)
	for _, k := range []string{"ktalpha child", "ktbravo child", "host"} {
		if seen[k] < 2 {
			t.Errorf("%d execs of %q in 4 s, want one a second at least twice: %v", seen[k], k, seen)
		}
	}
}

// udpLoop sends a datagram to 127.0.0.1:port every 50 ms from the node
// itself (its own network namespace), until cleanup.
func udpLoop(t *testing.T, port int) {
	t.Helper()
	conn, err := net.Dial("udp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				_, _ = conn.Write([]byte("ktnode"))
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
		conn.Close()
	})
}

// TestNodeTcpdump: the node's own network namespace, every interface by
// default and the one --arg interface names: loopback datagrams sent on
// the node (in no pod) are captured both ways.
func TestNodeTcpdump(t *testing.T) {
	udpLoop(t, 5598)
	for _, args := range [][]string{
		{"--arg", "filter=udp port 5598"},
		{"--arg", "filter=udp port 5598", "--arg", "interface=lo"},
	} {
		r := runTrace(t, nil, append([]string{"node/" + nodeName, "--hook", "tcpdump", "--duration", "3s", "-o", "json"}, args...)...)
		nodeSession(t, r, "tcpdump")
		n := 0
		for _, e := range parseEvents(t, r.stdout, "json") {
			if e.Node != nodeName || e.Pod != "" || !strings.Contains(e.Fields["line"], "127.0.0.1.5598: UDP") {
				t.Errorf("event %+v, want the node's loopback datagrams only", e)
				continue
			}
			n++
		}
		if n < 20 {
			t.Errorf("%v: %d datagrams captured in 3 s, want about 60", args, n)
		}
	}
}

// TestNodeRefusals: what a whole node cannot take fails before anything
// is created, saying what to do.
func TestNodeRefusals(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"node/" + nodeName, "--hook", "funcgraph"}, `hook "funcgraph" cannot trace a whole node`},
		{[]string{"node/" + nodeName, "--hook", "sched", "--mode", "ephemeral"}, "--mode ephemeral cannot trace a whole node"},
		{[]string{"node/" + nodeName, "pod/x", "--hook", "sched"}, "not both in one command"},
		{[]string{"node/no-such-node", "--hook", "sched"}, `node "no-such-node" not found`},
	} {
		start := time.Now()
		r := trace(t, tt.args...)
		if r.code == 0 || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("kubectl trace %s: exit %d, stderr %q; want a failure saying %q", strings.Join(tt.args, " "), r.code, r.stderr, tt.want)
		}
		if time.Since(start) > 20*time.Second {
			t.Errorf("refusing %v took %s", tt.args, time.Since(start))
		}
	}
	if pods := helperPods(t); len(pods) != 0 {
		t.Errorf("%d helper pods created by refused commands", len(pods))
	}
}
