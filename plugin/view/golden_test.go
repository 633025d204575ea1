package view

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run go test ./plugin/view -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}

// flushes reads testdata/<hook>.jsonl, the -o json output of a real
// session (two pods of one node, --arg interval=1s, --duration 5s), and
// cuts it into the helper's flushes: the rows that share a Time.
func flushes(t *testing.T, file string) [][]wire.Event {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", file+".jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]wire.Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev wire.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		if n := len(out); n == 0 || out[n-1][0].Time != ev.Time {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], ev)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// withMarks appends to a flush the mark of each of its targets, as the
// helper sends them when asked.
func withMarks(flush []wire.Event) []wire.Event {
	out := append([]wire.Event(nil), flush...)
	rows := map[string]int{}
	var order []wire.Event
	for _, ev := range flush {
		k := eventTarget(&ev).String()
		if rows[k] == 0 {
			order = append(order, ev)
		}
		rows[k]++
	}
	for _, ev := range order {
		out = append(out, wire.Event{Time: ev.Time, PID: ev.PID, Comm: ev.Comm, Event: markEvent,
			Fields: map[string]string{markRows: strconv.Itoa(rows[eventTarget(&ev).String()])},
			Node:   ev.Node, Namespace: ev.Namespace, Pod: ev.Pod, Container: ev.Container})
	}
	return out
}

// play runs a session's flushes through a Screen on a terminal, as the
// plugin would: one Write per flush, the state updated before it, Close
// at the end. It returns the screen after each flush and at the end, and
// the end alone.
func play(t *testing.T, hookName string, w int, st Styles, marks bool) (steps []string, end string) {
	t.Helper()
	return playFile(t, hookName, hookName, map[string]string{"interval": "1s"}, w, st, marks)
}

func playFile(t *testing.T, hookName, file string, args map[string]string, w int, st Styles, marks bool) (steps []string, end string) {
	t.Helper()
	tm := newTerm(t, hookName, args, Size{Width: w, Height: 50}, st)
	fl := flushes(t, file)
	targets := map[string]bool{}
	for _, f := range fl {
		for _, ev := range f {
			targets[eventTarget(&ev).String()] = true
		}
	}
	var events uint64
	start := fl[0][0].Time - 1
	state := func(ts float64) {
		tm.s.SetState(State{Targets: len(targets), Events: events, Elapsed: time.Duration((ts - start) * float64(time.Second))})
	}
	for _, f := range fl {
		events += uint64(len(f))
		state(f[0].Time)
		if marks {
			f = withMarks(f)
		}
		if _, err := tm.s.Write(jsonl(t, f...)); err != nil {
			t.Fatal(err)
		}
		steps = append(steps, tm.screen())
	}
	before := tm.screen()
	if err := tm.s.Close(); err != nil {
		t.Fatal(err)
	}
	all := tm.screen()
	end = all
	if hookName == "runqlat" {
		// Printed, not redrawn: the end is what Close added.
		end = strings.TrimPrefix(all, before)
	}
	return append(steps, all), end
}

// TestGolden: both views of a real session, at 80 and 200 columns (and
// 40, the narrowest the layout is made for), with and without colour:
// for runqlat the output as printed, for syscall-top the screen after
// each flush (redrawn in place) and at the end. The ends without colour
// at 80 columns are what docs/hooks.md shows.
func TestGolden(t *testing.T) {
	for _, hookName := range []string{"runqlat", "syscall-top"} {
		for _, w := range []int{40, 80, 200} {
			for _, c := range []struct {
				suffix string
				st     Styles
			}{{"", plain()}, {"-color", colour()}} {
				if w == 40 && c.suffix != "" {
					continue
				}
				name := hookName + "-" + strconv.Itoa(w) + c.suffix
				t.Run(name, func(t *testing.T) {
					steps, end := play(t, hookName, w, c.st, true)
					got := steps[len(steps)-1]
					if hookName == "syscall-top" {
						var b bytes.Buffer
						for i, s := range steps {
							label := "after flush " + strconv.Itoa(i+1)
							if i == len(steps)-1 {
								label = "at the end"
							}
							b.WriteString("──── screen " + label + " ────\n" + s)
						}
						got = b.String()
					}
					golden(t, name+".golden", got)
					if w == 80 && c.suffix == "" {
						golden(t, hookName+"-end.golden", end)
					}
				})
			}
		}
	}
}

// TestGoldenWithoutMarks: a helper that sends no marks gives the same
// output in the end (a histogram is printed one flush later, the last at
// Close), every table drawn one flush later.
func TestGoldenWithoutMarks(t *testing.T) {
	for _, hookName := range []string{"runqlat", "syscall-top"} {
		with, _ := play(t, hookName, 80, plain(), true)
		without, _ := play(t, hookName, 80, plain(), false)
		if with[len(with)-1] != without[len(without)-1] {
			t.Errorf("%s: the end differs without marks:\n%s\nwith marks:\n%s", hookName, without[len(without)-1], with[len(with)-1])
		}
		if hookName != "syscall-top" {
			continue
		}
		if !strings.Contains(without[0], "waiting for the first interval") {
			t.Errorf("without marks, the first flush drew an interval:\n%s", without[0])
		}
		body := func(screen string) string { _, b, _ := strings.Cut(screen, "\n"); return b }
		for k := 0; k+1 < len(with)-1; k++ {
			if body(without[k+1]) != body(with[k]) {
				t.Errorf("without marks, flush %d drew:\n%s\nwant what flush %d drew with marks:\n%s", k+2, without[k+1], k+1, with[k])
			}
		}
	}
}

// TestGoldenCountOnly: syscall-top with latency=false, one target: no
// time columns and no target column, the target named in the header.
func TestGoldenCountOnly(t *testing.T) {
	_, end := playFile(t, "syscall-top", "syscall-top-count", map[string]string{"interval": "1s", "latency": "false"}, 80, plain(), true)
	golden(t, "syscall-top-count-end.golden", end)
	for _, col := range []string{"TOTAL", "AVG", "%TIME", "TARGET"} {
		if strings.Contains(end, col) {
			t.Errorf("column %s with latency=false and one target:\n%s", col, end)
		}
	}
}
