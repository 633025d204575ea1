package otlp

import (
	"context"
	"testing"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// TestRecordsLinkTheirTargetsSpan: a target's records carry its span's
// trace and span IDs, in the session's trace; without the traces signal
// they carry none (no link to a span that is never sent).
func TestRecordsLinkTheirTargetsSpan(t *testing.T) {
	cfg, err := Parse(Options{Endpoint: "http://" + refusedAddr(t)}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	for _, signals := range [][]string{nil, {SignalLogs, SignalMetrics}} {
		e, err := New(cfg, Session{ID: "s", Hook: "sched"}, Settings{Signals: signals})
		if err != nil {
			t.Fatal(err)
		}
		tg := e.AddTarget(wire.Target{Kind: wire.TargetNode, Node: "n"})
		sc := tg.span.SpanContext()
		if signals == nil {
			if tg.template.TraceID() != e.TraceID() || tg.template.SpanID() != sc.SpanID() || !sc.IsSampled() {
				t.Errorf("record template links %s/%s, want the target span %s/%s", tg.template.TraceID(), tg.template.SpanID(), sc.TraceID(), sc.SpanID())
			}
		} else if tg.template.TraceID().IsValid() || tg.template.SpanID().IsValid() {
			t.Errorf("without traces the records link %s/%s", tg.template.TraceID(), tg.template.SpanID())
		}
		// The SDK's providers merge resource.Environment() under it: the
		// same variables Parse read.
		if !tg.template.Resource().Equal(tg.res) {
			t.Errorf("the template's resource %v is not the target's %v", tg.template.Resource(), tg.res)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		e.Stop(ctx, nil)
	}
}
