package runner

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/attach"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// With Request.Text a JSON event carries the line text output would show
// for it, unless its hook said its own; without, it carries none.
func TestRunText(t *testing.T) {
	procRoot, cgroupRoot, _ := fakeNode(t)
	own := ev2
	own.Text = "the hook's own line"
	run := func(text bool) (events []wire.Event, lines []string) {
		h := &fakeHook{before: []wire.Event{ev1, own}}
		req := request(hooks.OutputJSON, "containerd://"+id)
		req.Text = text
		var stdout, stderr syncBuffer
		err := Run(context.Background(), req, Config{ProcRoot: procRoot, CgroupRoot: cgroupRoot,
			Stdin: strings.NewReader("g"), Stdout: &stdout, Stderr: &stderr, RefreshInterval: -1,
			Runtimes: map[string]attach.Runtime{hooks.KindFtrace: attach.OpenFunc(func(context.Context, attach.Attachment) (attach.Session, error) { return h, nil })}})
		if err != nil {
			t.Fatalf("Run: %v\n%s", err, stderr.String())
		}
		for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
			var ev wire.Event
			if err := json.Unmarshal([]byte(l), &ev); err != nil {
				t.Fatalf("%q: %v", l, err)
			}
			events, lines = append(events, ev), append(lines, l)
		}
		return events, lines
	}
	events, _ := run(true)
	want := []string{strings.TrimSuffix(string(appendText(nil, &ev1, "k=v")), "\n"), "the hook's own line"}
	if diff := cmp.Diff(want, []string{events[0].Text, events[1].Text}); diff != "" {
		t.Errorf("texts (-want +got):\n%s", diff)
	}
	if events[0].Text != "1.000001 [001] app-4242 sched_switch: k=v" {
		t.Errorf("text %q", events[0].Text)
	}
	events, lines := run(false)
	if events[0].Text != "" || strings.Contains(lines[0], `"text"`) {
		t.Errorf("without Request.Text: %s", lines[0])
	}
}
