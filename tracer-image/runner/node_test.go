package runner

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/attach"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

func TestResolveNode(t *testing.T) {
	procRoot, _, _ := fakeNode(t)
	node := wire.Target{Kind: wire.TargetNode, Node: "n1"}
	r, err := ResolveMode(procRoot, node, wire.ModeNode)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(attach.Target{Target: node, Method: attach.MethodNode}, r); diff != "" {
		t.Errorf("resolution (-want +got):\n%s", diff)
	}
}

// A whole node is resolved without a process, handed to the hook as such,
// and never ends for lack of members: only the end of stdin stops it.
func TestRunWholeNode(t *testing.T) {
	procRoot, cgroupRoot, _ := fakeNode(t)
	stdinR, stdinW := io.Pipe()
	var stderr syncBuffer
	var stdout syncBuffer
	var got attach.Attachment
	h := &fakeHook{before: []wire.Event{{Time: 1, PID: 7, Comm: "host", Event: "sched_switch", Node: "n1"}}}
	req := wire.Request{Version: wire.ProtocolVersion, SessionID: "s1", Hook: "sched", Output: hooks.OutputJSON,
		Targets: []wire.Target{{Kind: wire.TargetNode, Node: "n1"}}}
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), req, Config{
			ProcRoot: procRoot, CgroupRoot: cgroupRoot,
			Stdin: stdinR, Stdout: &stdout, Stderr: &stderr,
			Runtimes: map[string]attach.Runtime{hooks.KindFtrace: attach.OpenFunc(func(_ context.Context, a attach.Attachment) (attach.Session, error) {
				got = a
				return h, nil
			})},
			RefreshInterval: 5 * time.Millisecond,
		})
	}()
	if _, err := stdinW.Write([]byte("g")); err != nil {
		t.Fatal(err)
	}
	// Many refreshes: none may end the node.
	time.Sleep(200 * time.Millisecond)
	stdinW.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v\nstderr:\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not end with stdin")
	}
	if len(got.Targets) != 1 || got.Targets[0].Method != attach.MethodNode || !got.Targets[0].Target.IsNode() {
		t.Errorf("the hook got %+v, want the whole node", got.Targets)
	}
	statuses := parseStatuses(t, stderr.String())
	want := []string{wire.StatusReady, wire.StatusResolved, wire.StatusStarted, wire.StatusStats}
	if diff := cmp.Diff(want, kinds(statuses)); diff != "" {
		t.Fatalf("status kinds (-want +got):\n%s", diff)
	}
	if statuses[1].Method != attach.MethodNode || !strings.Contains(statuses[1].Message, "every task") {
		t.Errorf("resolved status = %+v, want the whole node", statuses[1])
	}
	var ev wire.Event
	if err := json.Unmarshal([]byte(strings.TrimSpace(stdout.String())), &ev); err != nil {
		t.Fatalf("stdout %q: %v", stdout.String(), err)
	}
	if ev.Node != "n1" || ev.Pod != "" || ev.Namespace != "" || ev.Container != "" || ev.Comm != "host" {
		t.Errorf("event = %+v, want the node's, naming no pod", ev)
	}
}
