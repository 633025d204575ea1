package view

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// feed adds the events, failing the test on an error.
func feed(t *testing.T, s *Screen, evs ...wire.Event) {
	t.Helper()
	for i := range evs {
		if err := s.Add(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
}

func newScreen(t *testing.T, b *bytes.Buffer, hookName string, args map[string]string, sz Size) *Screen {
	t.Helper()
	s, err := New(b, Config{Hook: hook(t, hookName), Args: args, Styles: plain(), Size: sz})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTableRates: the first interval's rate is over the interval
// parameter, later ones over the kernel time between two flushes; rows
// are sorted by count, then time, then name; %TIME is the share of the
// target's time.
func TestTableRates(t *testing.T) {
	var b bytes.Buffer
	s := newScreen(t, &b, "syscall-top", map[string]string{"interval": "2s"}, Size{Width: 100})
	s.SetState(State{Targets: 1, Events: 3, Elapsed: 2 * time.Second})
	feed(t, s,
		sysRow("web", 100, "read", 400, 1_000_000),
		sysRow("web", 100, "write", 400, 3_000_000),
		sysRow("web", 100, "close", 100, 0),
		mark("web", 100, 3))
	if err := s.Draw(); err != nil {
		t.Fatal(err)
	}
	want := `syscall-top · 3 events · 0 lost · 2s elapsed · web/app · every 2s
SYSCALL  COUNT  RATE/s   TOTAL     AVG  %TIME
write      400     200  3.00ms  7.50µs   75.0
read       400     200  1.00ms  2.50µs   25.0
close      100    50.0     0ns     0ns    0.0
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("first interval (-want +got):\n%s", diff)
	}
	b.Reset()
	// The next flush came 2.5 s later by the kernel's clock.
	feed(t, s, sysRow("web", 102.5, "read", 1000, 2_000_000), mark("web", 102.5, 1))
	if err := s.Draw(); err != nil {
		t.Fatal(err)
	}
	want = `
syscall-top · 3 events · 0 lost · 2s elapsed · web/app · every 2s
SYSCALL  COUNT  RATE/s   TOTAL     AVG  %TIME
read      1000     400  2.00ms  2.00µs  100.0
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("second interval (-want +got):\n%s", diff)
	}
}

// TestTableMerged: several targets share one table with a target column
// when it fits, sorted across them; latency=false drops the time columns.
func TestTableMerged(t *testing.T) {
	var b bytes.Buffer
	s := newScreen(t, &b, "syscall-top", nil, Size{Width: 80})
	s.SetState(State{Targets: 2, Events: 3})
	feed(t, s,
		sysRow("web-a", 7, "getppid", 20000, 0),
		sysRow("web-a", 7, "read", 30, 0),
		sysRow("web-b", 7, "read", 30, 0),
		mark("web-a", 7, 2), mark("web-b", 7, 1))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	want := `syscall-top (ended) · 3 events · 0 lost · 0s elapsed · 2 targets · every 1s
TARGET     SYSCALL  COUNT  RATE/s
web-a/app  getppid  20000   20000
web-a/app  read        30    30.0
web-b/app  read        30    30.0
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestIntervalComplete: an interval is complete at its mark, or without
// one at the first row of the next flush, or at Close; targets apart.
func TestIntervalComplete(t *testing.T) {
	var b bytes.Buffer
	s := newScreen(t, &b, "runqlat", map[string]string{"interval": "1s"}, Size{Width: 72})
	draw := func() string {
		t.Helper()
		b.Reset()
		if err := s.Draw(); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	feed(t, s, bucket("a", 1, 0, 1, 5), bucket("b", 1, 2, 3, 7))
	if got := draw(); got != "" {
		t.Fatalf("drew an interval before it was complete:\n%s", got)
	}
	feed(t, s, mark("a", 1, 1))
	got := draw()
	if !strings.HasPrefix(got, "a/app · interval 1 · 1.00s · 5 counted\n") || strings.Contains(got, "b/app") {
		t.Fatalf("a's mark drew:\n%s", got)
	}
	// b has no mark (an older helper): its next flush completes it.
	feed(t, s, bucket("b", 2, 2, 3, 1))
	if got := draw(); !strings.HasPrefix(got, "b/app · interval 1 · 1.00s · 7 counted\n") {
		t.Fatalf("b's next flush drew:\n%s", got)
	}
	// A mark of more rows than came: a limit cut the flush short.
	feed(t, s, mark("a", 2, 4))
	if got := draw(); !strings.HasPrefix(got, "a/app · interval 2 · 1.00s · 0 counted · cut short by a limit\n") {
		t.Fatalf("a's short interval drew:\n%s", got)
	}
	b.Reset()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	want := `b/app · interval 2 · 1.00s · 1 counted
 usecs  count      %  distribution
2 -> 3      1  100.0  ██████████████████████████████████████████████████

a/app · whole session · 2 intervals · 5 counted
 usecs  count      %  distribution
0 -> 1      5  100.0  ██████████████████████████████████████████████████

b/app · whole session · 2 intervals · 8 counted
 usecs  count      %  distribution
2 -> 3      8  100.0  ██████████████████████████████████████████████████

`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("at Close (-want +got):\n%s", diff)
	}
	feed(t, s, bucket("a", 3, 0, 1, 1))
	if err := s.Draw(); err != nil || b.String() != want {
		t.Errorf("drew after Close (%v):\n%s", err, b.String())
	}
}

// TestFinalShortInterval: at the end, a final flush just after a tick
// does not replace the last full interval on the screen.
func TestFinalShortInterval(t *testing.T) {
	var b bytes.Buffer
	s := newScreen(t, &b, "syscall-top", nil, Size{Width: 80})
	feed(t, s, sysRow("web", 10, "read", 1000, 5000), mark("web", 10, 1),
		sysRow("web", 10.05, "write", 3, 90), mark("web", 10.05, 1))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); !strings.Contains(got, "read ") || strings.Contains(got, "write") {
		t.Errorf("final frame:\n%s", got)
	}
}
