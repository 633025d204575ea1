package view

import (
	"io"
	"strconv"
	"testing"

	"github.com/charmbracelet/lipgloss"
	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"github.com/muesli/termenv"
)

// colour are the styles of a 256-colour terminal.
func colour() Styles {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.ANSI256)
	return NewStyles(r)
}

func hook(t *testing.T, name string) hooks.Descriptor {
	t.Helper()
	d, ok := hooks.Lookup(name)
	if !ok {
		t.Fatalf("no hook %q", name)
	}
	return d
}

// sysRow is a syscall-top row as the helper emits it (flush_linux.go).
func sysRow(pod string, ts float64, name string, count, totalNs uint64) wire.Event {
	f := map[string]string{"syscall": name, "nr": "0", "count": strconv.FormatUint(count, 10)}
	if totalNs > 0 {
		f["total_ns"] = strconv.FormatUint(totalNs, 10)
		f["avg_ns"] = strconv.FormatUint(totalNs/count, 10)
	}
	return wire.Event{Time: ts, PID: 4242, Comm: "app", Event: "syscall", Fields: f,
		Node: "node-1", Namespace: "shop", Pod: pod, Container: "app"}
}

// bucket is a runqlat row.
func bucket(pod string, ts float64, lo, hi, count uint64) wire.Event {
	return wire.Event{Time: ts, PID: 4242, Comm: "app", Event: "runqlat", Fields: map[string]string{
		"usecs_lo": strconv.FormatUint(lo, 10), "usecs_hi": strconv.FormatUint(hi, 10), "count": strconv.FormatUint(count, 10)},
		Node: "node-1", Namespace: "shop", Pod: pod, Container: "app"}
}

// mark is the helper's mark after a target's rows of one flush.
func mark(pod string, ts float64, rows int) wire.Event {
	return wire.Event{Time: ts, PID: 4242, Comm: "app", Event: markEvent, Fields: map[string]string{markRows: strconv.Itoa(rows)},
		Node: "node-1", Namespace: "shop", Pod: pod, Container: "app"}
}
