package view

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// term is a Screen on a terminal of size sz, with what it shows.
type term struct {
	t   *testing.T
	s   *Screen
	out bytes.Buffer
	vt  vt
}

func newTerm(t *testing.T, hookName string, args map[string]string, sz Size, st Styles) *term {
	t.Helper()
	tm := &term{t: t}
	s, err := New(&tm.out, Config{Hook: hook(t, hookName), Args: args, Styles: st, Terminal: true, Size: sz})
	if err != nil {
		t.Fatal(err)
	}
	tm.s = s
	return tm
}

// screen passes what the Screen wrote since the last call to the
// terminal and returns what the terminal shows.
func (tm *term) screen() string {
	tm.t.Helper()
	if err := tm.vt.write(tm.out.String()); err != nil {
		tm.t.Fatalf("%v in %q", err, tm.out.String())
	}
	tm.out.Reset()
	return tm.vt.screen()
}

// jsonl is events as the helper writes them with -o json.
func jsonl(t *testing.T, evs ...wire.Event) []byte {
	t.Helper()
	var b []byte
	var enc wire.EventEncoder
	for i := range evs {
		var err error
		if b, err = enc.AppendJSON(b, &evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// TestRedrawInPlace: each interval's table replaces the one before on
// the terminal, a shorter one leaving nothing of the longer behind; a
// line written between Clear and Redraw stays above the table.
func TestRedrawInPlace(t *testing.T) {
	tm := newTerm(t, "syscall-top", nil, Size{Width: 80, Height: 24}, plain())
	tm.vt.lines, tm.vt.row = []string{"$ kubectl trace deploy/web --hook syscall-top"}, 1
	tm.s.SetState(State{Targets: 1})
	if err := tm.s.Draw(); err != nil {
		t.Fatal(err)
	}
	want := `$ kubectl trace deploy/web --hook syscall-top
syscall-top · 0 events · 0 lost · 0s elapsed · 1 target · every 1s
waiting for the first interval (every 1s)
`
	if diff := cmp.Diff(want, tm.screen()); diff != "" {
		t.Errorf("before the first interval (-want +got):\n%s", diff)
	}
	if _, err := tm.s.Write(jsonl(t, sysRow("web", 1, "read", 90, 900), sysRow("web", 1, "write", 10, 100), mark("web", 1, 2))); err != nil {
		t.Fatal(err)
	}
	tm.s.SetState(State{Targets: 1, Events: 2})
	if _, err := tm.s.Write(jsonl(t, sysRow("web", 2, "openat", 5, 50), mark("web", 2, 1))); err != nil {
		t.Fatal(err)
	}
	want = `$ kubectl trace deploy/web --hook syscall-top
syscall-top · 2 events · 0 lost · 0s elapsed · web/app · every 1s
SYSCALL  COUNT  RATE/s  TOTAL   AVG  %TIME
openat       5     5.0   50ns  10ns  100.0
`
	if diff := cmp.Diff(want, tm.screen()); diff != "" {
		t.Errorf("second interval (-want +got):\n%s", diff)
	}
	if err := tm.s.Clear(); err != nil {
		t.Fatal(err)
	}
	tm.out.WriteString("warning: pod web-2 ended\n")
	if err := tm.s.Redraw(); err != nil {
		t.Fatal(err)
	}
	if err := tm.s.Close(); err != nil {
		t.Fatal(err)
	}
	want = `$ kubectl trace deploy/web --hook syscall-top
warning: pod web-2 ended
syscall-top (ended) · 2 events · 0 lost · 0s elapsed · web/app · every 1s
SYSCALL  COUNT  RATE/s  TOTAL   AVG  %TIME
openat       5     5.0   50ns  10ns  100.0
`
	if diff := cmp.Diff(want, tm.screen()); diff != "" {
		t.Errorf("at the end (-want +got):\n%s", diff)
	}
}

// TestResize: a wider terminal redraws in place; a narrower one draws
// below, never over lines it may have rewrapped.
func TestResize(t *testing.T) {
	tm := newTerm(t, "syscall-top", nil, Size{Width: 80, Height: 24}, plain())
	if _, err := tm.s.Write(jsonl(t, sysRow("web", 1, "read", 90, 900), mark("web", 1, 1))); err != nil {
		t.Fatal(err)
	}
	first := tm.screen()
	tm.s.Resize(Size{Width: 120, Height: 24})
	if err := tm.s.Draw(); err != nil {
		t.Fatal(err)
	}
	if got := tm.screen(); got != first {
		t.Errorf("a wider terminal changed the table:\n%s\nwas:\n%s", got, first)
	}
	tm.s.Resize(Size{Width: 40, Height: 24})
	if err := tm.s.Draw(); err != nil {
		t.Fatal(err)
	}
	got := tm.screen()
	if !strings.HasPrefix(got, first) || strings.Count(got, "SYSCALL") != 2 {
		t.Errorf("a narrower terminal: want the table again below the first:\n%s", got)
	}
	for _, l := range strings.Split(strings.TrimSuffix(got[len(first):], "\n"), "\n") {
		if w := width(l); w > 40 {
			t.Errorf("line of %d columns on a terminal of 40: %q", w, l)
		}
	}
}

// TestHeight: a table taller than the terminal is cut, so that a redraw
// never scrolls what it moves back over off the screen.
func TestHeight(t *testing.T) {
	tm := newTerm(t, "syscall-top", map[string]string{"top": "50"}, Size{Width: 80, Height: 10}, plain())
	var evs []wire.Event
	for i := range 30 {
		evs = append(evs, sysRow("web", 1, fmt.Sprintf("sys_%02d", i), uint64(100-i), 1000))
	}
	if _, err := tm.s.Write(jsonl(t, append(evs, mark("web", 1, len(evs)))...)); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(tm.screen(), "\n"), "\n")
	if len(got) != 9 || got[8] != "… 24 more lines: a taller terminal shows them" || !strings.HasPrefix(got[7], "sys_05 ") {
		t.Errorf("%d lines on a terminal of 10:\n%s", len(got), strings.Join(got, "\n"))
	}
}

// TestNarrow: at every width from 20 to 200 columns no line of either
// view is wider than the terminal, whatever the names; from 40 columns
// on, the table keeps its key, count and average, and the histogram its
// bars.
func TestNarrow(t *testing.T) {
	long := "checkout-service-7d9f8c6b5d-x2kq4-with-a-very-long-suffix"
	wide := "名前-サービス"
	var rows, buckets []wire.Event
	for _, pod := range []string{long, wide} {
		rows = append(rows, sysRow(pod, 1, "clock_nanosleep", 123456789, 98_765_432_100), sysRow(pod, 1, "read", 5, 10),
			sysRow(pod, 1, "x\x1b[31m", 1, 1))
		buckets = append(buckets, bucket(pod, 1, 0, 1, 3), bucket(pod, 1, 1048576, 2097151, 99999999))
	}
	for w := 20; w <= 200; w++ {
		for _, c := range []struct {
			hook string
			evs  []wire.Event
		}{{"syscall-top", rows}, {"runqlat", buckets}} {
			tm := newTerm(t, c.hook, nil, Size{Width: w}, colour())
			tm.s.SetState(State{Targets: 2, Events: 123456789, Lost: 5})
			if _, err := tm.s.Write(jsonl(t, c.evs...)); err != nil {
				t.Fatal(err)
			}
			if err := tm.s.Close(); err != nil {
				t.Fatal(err)
			}
			got := tm.screen()
			for _, l := range strings.Split(got, "\n") {
				if lw := width(l); lw > w {
					t.Errorf("%s at %d columns: a line of %d: %q", c.hook, w, lw, l)
				}
			}
			if w < 40 {
				continue
			}
			if c.hook == "syscall-top" && !(strings.Contains(got, "SYSCALL") && strings.Contains(got, "COUNT") && strings.Contains(got, "AVG")) {
				t.Errorf("syscall-top at %d columns lacks a column it must keep:\n%s", w, got)
			}
			if c.hook == "runqlat" && !strings.Contains(got, "████") {
				t.Errorf("runqlat at %d columns lacks its bars:\n%s", w, got)
			}
		}
	}
}

// TestEscaped: names a workload or the kernel controls reach the terminal
// escaped; without colour the frames hold no escape but the cursor's.
func TestEscaped(t *testing.T) {
	evil := "web\x1b]0;pwned\x07\x1b[2J"
	for _, hookName := range []string{"syscall-top", "runqlat"} {
		var b bytes.Buffer
		s := newScreen(t, &b, hookName, nil, Size{Width: 200})
		ev := sysRow(evil, 1, "read\x1b[1A\r", 1, 1)
		if hookName == "runqlat" {
			ev = bucket(evil, 1, 0, 1, 1)
		}
		ev.Container = "app\nFAKE LINE"
		feed(t, s, ev)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		got := b.String()
		if strings.ContainsAny(got, "\x1b\x07\r") || strings.Contains(got, "\nFAKE") {
			t.Errorf("%s: a control character reached the output: %q", hookName, got)
		}
		if !strings.Contains(got, `web\x1b]0;pwned\x07\x1b[2J/app\x0aFAKE LINE`) {
			t.Errorf("%s: the target is not shown escaped: %q", hookName, got)
		}
		if hookName == "syscall-top" && !strings.Contains(got, `read\x1b[1A\x0d`) {
			t.Errorf("the syscall is not shown escaped: %q", got)
		}
	}
}

// TestWriteChunks: Write takes the helper's JSON lines cut anywhere, and
// says which line it could not read.
func TestWriteChunks(t *testing.T) {
	data := jsonl(t, sysRow("web", 1, "read", 90, 900), mark("web", 1, 1))
	var whole, cut bytes.Buffer
	s1 := newScreen(t, &whole, "syscall-top", nil, Size{Width: 80})
	s2 := newScreen(t, &cut, "syscall-top", nil, Size{Width: 80})
	if _, err := s1.Write(data); err != nil {
		t.Fatal(err)
	}
	for i := range data {
		if _, err := s2.Write(data[i : i+1]); err != nil {
			t.Fatal(err)
		}
	}
	if whole.String() == "" || whole.String() != cut.String() {
		t.Errorf("byte by byte:\n%s\nwhole:\n%s", cut.String(), whole.String())
	}
	_, err := s1.Write([]byte("{\"time\":1,\"fields\":\n"))
	if err == nil || !strings.Contains(err.Error(), `reading the helper's rows: "{\"time\":1,\"fields\":"`) {
		t.Errorf("a broken line: %v", err)
	}
	bad := sysRow("web", 2, "read", 1, 1)
	bad.Fields["count"] = "many"
	line, _ := json.Marshal(bad)
	_, err = s1.Write(append(line, '\n'))
	if err == nil || err.Error() != `row of syscall at 2.000000: field count="many" is not a count` {
		t.Errorf("a bad count: %v", err)
	}
}

// TestConcurrent: the plugin writes each helper's rows, the state and
// resizes from their own goroutines (run with -race).
func TestConcurrent(t *testing.T) {
	tm := newTerm(t, "syscall-top", nil, Size{Width: 80, Height: 40}, plain())
	done := make(chan error, 3)
	for _, pod := range []string{"a", "b"} {
		var flushes [][]byte
		for i := range 50 {
			flushes = append(flushes, jsonl(t, sysRow(pod, float64(i), "read", 10, 10), mark(pod, float64(i), 1)))
		}
		go func() {
			var err error
			for _, f := range flushes {
				if err == nil {
					_, err = tm.s.Write(f)
				}
			}
			done <- err
		}()
	}
	go func() {
		for i := range 50 {
			tm.s.SetState(State{Targets: 2, Events: uint64(i)})
			tm.s.Resize(Size{Width: 80 + i%2, Height: 40})
		}
		done <- tm.s.Draw()
	}()
	for range 3 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if err := tm.s.Close(); err != nil {
		t.Fatal(err)
	}
	got := tm.screen()
	if !strings.Contains(got, "a/app") || !strings.Contains(got, "b/app") {
		t.Errorf("the last table lacks a target:\n%s", got)
	}
}
