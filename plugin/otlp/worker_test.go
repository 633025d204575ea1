package otlp

import (
	"context"
	"encoding/json"
	"net/url"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// bareExporter is an exporter with a queue of queue items and no
// goroutines, that sends nothing (no signal): the test drains the queue
// into the worker itself, so it decides what is dropped.
func bareExporter(queue int) (*Exporter, *worker) {
	e := &Exporter{sess: Session{Hook: "syscall-top"}, set: Settings{Signals: []string{}}.withDefaults(), q: make(chan item, queue)}
	e.runCtx, e.cancelRun = context.WithCancel(context.Background())
	e.logAcct = newAccount(&e.lastErr, &e.errMu)
	e.metrics = newSender(newAccount(&e.lastErr, &e.errMu), 1, 1)
	e.spans = newSender(newAccount(&e.lastErr, &e.errMu), 1, 1)
	e.cfg.Logs = &Endpoint{URL: &url.URL{}}
	e.w = newWorker(e)
	return e, e.w
}

// syscallLine is a syscall-top row for syscall name, as -o json writes it.
func syscallLine(t *testing.T, name string) string {
	b, err := json.Marshal(wire.Event{Time: 1, Event: "syscall", Fields: map[string]string{"syscall": name, "count": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

// TestEmitJSONAcrossDrops: lines cut across EmitJSON calls are joined;
// when a call is dropped (the queue full), the lines cut by the drop are
// lost and counted once each, and the lines after them are decoded.
func TestEmitJSONAcrossDrops(t *testing.T) {
	e, w := bareExporter(1)
	tg := &Target{e: e}
	e.targets = append(e.targets, tg)
	drain := func() {
		it := <-e.q
		e.queuedBytes.Add(-int64(len(it.json)))
		w.handle(&it)
	}
	l := make([]string, 9)
	for i, name := range []string{"l1", "l2", "l3", "l4", "l5", "l6", "l7", "l8", "l9"} {
		l[i] = syscallLine(t, name)
	}
	half := func(s string) (string, string) { return s[:len(s)/2], s[len(s)/2:] }
	l2a, l2b := half(l[1])
	l4a, l4b := half(l[3])
	l6a, l6b := half(l[5])
	l8a, l8b := half(l[7])
	l8b1, l8b2 := half(l8b)

	tg.EmitJSON([]byte(l[0] + l2a))       // queued
	tg.EmitJSON([]byte(l2b + l[2] + l4a)) // dropped: the queue holds one item
	drain()
	tg.EmitJSON([]byte(l4b + l[4] + l6a)) // after a gap that ended mid-line: l4's rest is skipped
	drain()
	tg.EmitJSON([]byte(l6b)) // joins l6
	drain()
	tg.EmitJSON([]byte("not json\n" + l8a)) // queued
	tg.EmitJSON([]byte(l8b1))               // dropped: no newline in it
	drain()
	tg.EmitJSON([]byte(l8b2 + l[8])) // after a gap without a newline: l8 is lost, l9 is decoded
	drain()

	var got []string
	for name := range tg.agg.calls {
		got = append(got, name)
	}
	sort.Strings(got)
	if diff := cmp.Diff([]string{"l1", "l5", "l6", "l9"}, got); diff != "" {
		t.Errorf("decoded rows (-want +got):\n%s", diff)
	}
	s := e.summary()
	want := SignalSummary{Dropped: map[string]uint64{ReasonNotSent: 4, ReasonQueueFull: 4, ReasonNotEvent: 1}}
	if diff := cmp.Diff(want, s.Logs); diff != "" {
		t.Errorf("accounting (-want +got):\n%s", diff)
	}
	if s.Events != 9 {
		t.Errorf("%d events counted, want 9 (one per newline)", s.Events)
	}
}
