package runner

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

func TestAppendText(t *testing.T) {
	tests := []struct {
		name    string
		ev      wire.Event
		details string
		want    string
	}{
		{
			name:    "switch into the target names the target",
			ev:      wire.Event{Time: 429.674962, CPU: 1, PID: 19442, Comm: "bash", Event: "sched_switch"},
			details: "prev_comm=link prev_pid=19430 prev_prio=120 prev_state=R ==> next_comm=bash next_pid=19442 next_prio=120",
			want:    "429.674962 [001] bash-19442 sched_switch: prev_comm=link prev_pid=19430 prev_prio=120 prev_state=R ==> next_comm=bash next_pid=19442 next_prio=120\n",
		},
		{
			name:    "comm with a dash keeps it; the pid follows the last dash",
			ev:      wire.Event{Time: 3, CPU: 12, PID: 7, Comm: "kube-proxy", Event: "sched_process_exit"},
			details: "comm=kube-proxy pid=7 prio=120 group_dead=true",
			want:    "3.000000 [012] kube-proxy-7 sched_process_exit: comm=kube-proxy pid=7 prio=120 group_dead=true\n",
		},
		{
			name:    "blank in comm becomes an underscore, details stay as the kernel wrote them",
			ev:      wire.Event{Time: 0.5, CPU: 123, PID: 8, Comm: "Web Content", Event: "sched_wakeup"},
			details: "comm=Web Content pid=8 prio=120 target_cpu=123",
			want:    "0.500000 [123] Web_Content-8 sched_wakeup: comm=Web Content pid=8 prio=120 target_cpu=123\n",
		},
		{
			name: "unknown comm, no details",
			ev:   wire.Event{Time: 1.25, CPU: 1024, PID: 9, Event: "something"},
			want: "1.250000 [1024] <...>-9 something: \n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(appendText(nil, &tt.ev, tt.details))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("appendText mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOutputJSON(t *testing.T) {
	var buf bytes.Buffer
	o := newOutput(&buf, hooks.OutputJSON, time.Hour)
	ev := wire.Event{Time: 1.5, CPU: 1, PID: 42, Comm: "<idle>", Event: "sched_wakeup",
		Fields: map[string]string{"pid": "42"}, Node: "n1", Namespace: "ns", Pod: "web", Container: "app"}
	if err := o.emit(&ev, "pid=42"); err != nil {
		t.Fatal(err)
	}
	if err := o.close(); err != nil {
		t.Fatal(err)
	}
	want := `{"time":1.5,"cpu":1,"pid":42,"comm":"<idle>","event":"sched_wakeup","fields":{"pid":"42"},"node":"n1","namespace":"ns","pod":"web","container":"app"}` + "\n"
	if diff := cmp.Diff(want, buf.String()); diff != "" {
		t.Errorf("json line mismatch (-want +got):\n%s", diff)
	}
	var back wire.Event
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ev, back); diff != "" {
		t.Errorf("round trip mismatch (-want +got):\n%s", diff)
	}
}

// syncBuffer is a bytes.Buffer safe to read while another goroutine writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestOutputFlushesWithoutClose(t *testing.T) {
	var buf syncBuffer
	o := newOutput(&buf, hooks.OutputText, 10*time.Millisecond)
	defer o.close()
	ev := wire.Event{Time: 1, CPU: 0, PID: 1, Comm: "a", Event: "e"}
	if err := o.emit(&ev, "x=1"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for buf.String() == "" {
		if time.Now().After(deadline) {
			t.Fatal("the event was not flushed within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if diff := cmp.Diff("1.000000 [000] a-1 e: x=1\n", buf.String()); diff != "" {
		t.Errorf("output mismatch (-want +got):\n%s", diff)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errBrokenPipe }

var errBrokenPipe = errors.New("broken pipe")

func TestOutputWriteError(t *testing.T) {
	o := newOutput(failingWriter{}, hooks.OutputText, time.Hour)
	ev := wire.Event{Event: "e"}
	// The first emits fill the buffer; the error shows once it is flushed.
	if err := o.close(); err != nil {
		t.Fatalf("close of an empty output: %v", err)
	}
	o = newOutput(failingWriter{}, hooks.OutputText, time.Hour)
	var err error
	for i := 0; i < 100000 && err == nil; i++ {
		err = o.emit(&ev, strings.Repeat("x", 100))
	}
	if err == nil || !strings.HasPrefix(err.Error(), "writing trace data: ") {
		t.Errorf("emit error %v, want a write error", err)
	}
	if cerr := o.close(); cerr == nil {
		t.Error("close: no error after a failed write")
	}
}
