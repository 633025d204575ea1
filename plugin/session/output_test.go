package session

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// recordingOutput keeps what each target got.
type recordingOutput struct {
	merged map[string]bool
	got    map[string][]string
	events map[string][]wire.Event
	// decoded makes its writers EventWriters.
	decoded bool
}

func newRecording(decoded bool) *recordingOutput {
	return &recordingOutput{merged: map[string]bool{}, got: map[string][]string{}, events: map[string][]wire.Event{}, decoded: decoded}
}

func (r *recordingOutput) Open(t wire.Target, merged bool) (TargetWriter, error) {
	r.merged[t.String()] = merged
	w := &recordingWriter{r: r, key: t.String()}
	if r.decoded {
		return eventRecorder{w}, nil
	}
	return w, nil
}

func (r *recordingOutput) Close() error { return nil }

type recordingWriter struct {
	r   *recordingOutput
	key string
}

func (w *recordingWriter) Write(p []byte) error {
	w.r.got[w.key] = append(w.r.got[w.key], string(p))
	return nil
}

type eventRecorder struct{ *recordingWriter }

func (w eventRecorder) WriteEvents(evs []wire.Event) error {
	w.r.events[w.key] = append(w.r.events[w.key], evs...)
	return nil
}

func TestTeeCountsRecordsAndFeedsEveryOutput(t *testing.T) {
	one, two := newRecording(false), newRecording(false)
	tee := newTee(hooks.OutputText, []Output{one, two})
	tee.merged = true
	a := wire.Target{Namespace: "ns", Pod: "web-1", Container: "app"}
	if err := tee.target(a).write([]byte("1.0 [000] x-1 e: a\n2.0 [000] x-1 e: b\n")); err != nil {
		t.Fatal(err)
	}
	if n := tee.records(a); n != 2 {
		t.Errorf("records(web-1) = %d; want 2", n)
	}
	for i, out := range []*recordingOutput{one, two} {
		if diff := cmp.Diff(map[string][]string{"ns/web-1/app": {"1.0 [000] x-1 e: a\n2.0 [000] x-1 e: b\n"}}, out.got); diff != "" {
			t.Errorf("output %d (-want +got):\n%s", i, diff)
		}
		if !out.merged["ns/web-1/app"] {
			t.Errorf("output %d was not told the targets are merged", i)
		}
	}
}

// With -o json an EventWriter gets each line decoded once, and a plain
// writer beside it the lines.
func TestTeeDecodesJSONForEventWriters(t *testing.T) {
	plain, decoded := newRecording(false), newRecording(true)
	tee := newTee(hooks.OutputJSON, []Output{plain, decoded})
	a := wire.Target{Namespace: "ns", Pod: "web-1", Container: "app"}
	lines := `{"time":1.5,"cpu":2,"pid":7,"comm":"sh","event":"sched_switch","fields":{"prev_state":"S"},"node":"n1","namespace":"ns","pod":"web-1","container":"app"}` + "\n" +
		`{"time":2.5,"cpu":0,"pid":8,"comm":"ls","event":"sched_wakeup","node":"n1","namespace":"ns","pod":"web-1","container":"app"}` + "\n"
	if err := tee.target(a).write([]byte(lines)); err != nil {
		t.Fatal(err)
	}
	want := []wire.Event{
		{Time: 1.5, CPU: 2, PID: 7, Comm: "sh", Event: "sched_switch", Fields: map[string]string{"prev_state": "S"}, Node: "n1", Namespace: "ns", Pod: "web-1", Container: "app"},
		{Time: 2.5, PID: 8, Comm: "ls", Event: "sched_wakeup", Node: "n1", Namespace: "ns", Pod: "web-1", Container: "app"},
	}
	if diff := cmp.Diff(want, decoded.events["ns/web-1/app"]); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if len(decoded.got) != 0 {
		t.Errorf("the EventWriter got lines too: %q", decoded.got)
	}
	if diff := cmp.Diff([]string{lines}, plain.got["ns/web-1/app"]); diff != "" {
		t.Errorf("plain writer (-want +got):\n%s", diff)
	}
	if err := tee.target(a).write([]byte("not json\n")); err == nil {
		t.Error("a line that is not an event was taken")
	}
}

// Text is not decoded: an EventWriter gets the lines.
func TestTeeEventWriterGetsTextAsLines(t *testing.T) {
	decoded := newRecording(true)
	tee := newTee(hooks.OutputText, []Output{decoded})
	a := wire.Target{Namespace: "ns", Pod: "web-1", Container: "app"}
	if err := tee.target(a).write([]byte("1.0 x\n")); err != nil {
		t.Fatal(err)
	}
	if len(decoded.events) != 0 || len(decoded.got["ns/web-1/app"]) != 1 {
		t.Errorf("events %v lines %q; want the line only", decoded.events, decoded.got)
	}
}

func TestOutputsOneFilePerTarget(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	d := NewDirOutput(dir, hooks.OutputPCAP)
	tee := newTee(hooks.OutputPCAP, []Output{d})
	if err := tee.prepare(); err != nil {
		t.Fatal(err)
	}
	a := wire.Target{Namespace: "ns", Pod: "web-1", Container: "app"}
	c := wire.Target{Namespace: "ns", Pod: "web-2", Container: "app"}
	for _, w := range []struct {
		t wire.Target
		p string
	}{{a, "HDR-A"}, {c, "HDR-C"}, {a, "REC-A"}} {
		if err := tee.target(w.t).write([]byte(w.p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tee.close(); err != nil {
		t.Fatal(err)
	}
	paths := d.Paths()
	if len(paths) != 2 {
		t.Fatalf("paths = %v, want two files", paths)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "ns_web-1_app.pcap"))
	if string(got) != "HDR-AREC-A" {
		t.Errorf("web-1 file = %q", got)
	}
	if n := tee.records(a); n != 0 {
		t.Errorf("pcap records are counted by lines: %d", n)
	}
}

// The unframed stream's pieces reach the outputs in whole lines.
func TestRecordWriterWholeLines(t *testing.T) {
	out := newRecording(false)
	tee := newTee(hooks.OutputText, []Output{out})
	a := wire.Target{Namespace: "ns", Pod: "web-1", Container: "app"}
	w := &recordWriter{out: tee.target(a), whole: true}
	for _, p := range []string{"1.0 a", "\n2.0 b\n3.", "0 c\n", "4.0 no newline"} {
		if _, err := w.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	want := []string{"1.0 a\n2.0 b\n", "3.0 c\n", "4.0 no newline"}
	if diff := cmp.Diff(want, out.got["ns/web-1/app"]); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
}
