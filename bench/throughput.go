//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// tputHook is one hook of the throughput part and the load that feeds it.
type tputHook struct {
	name string
	hook string
	args []string // --arg values
	mode string   // the load's mode
	// match is what a delivered event of the load holds in its JSON line.
	match []byte
	note  string
}

var tputHooks = []tputHook{
	{name: "ftrace syscalls (syscalls=getppid)", hook: "syscalls", args: []string{"syscalls=getppid"}, mode: "getppid",
		match: []byte(`"name":"getppid"`), note: "one event per call, from its enter and exit records: lost counts kernel records"},
	{name: "ebpf open", hook: "open", mode: "open",
		match: []byte(`"path":"/dev/null"`), note: "one event per openat"},
}

const (
	tputLoadSeconds = 3.0 // the load runs this long once the trace is attached
	tputDuration    = "5s"
)

func tputRates(c config) []float64 {
	if c.rates != "" {
		var rs []float64
		for _, f := range strings.Split(c.rates, ",") {
			if r, err := strconv.ParseFloat(strings.TrimSpace(f), 64); err == nil {
				rs = append(rs, r)
			}
		}
		return rs
	}
	if c.quick {
		return []float64{100e3, 300e3, 0}
	}
	return []float64{100e3, 200e3, 300e3, 400e3, 600e3, 0}
}

type tputResult struct {
	rate                 float64 // asked
	offered              int64   // calls the load made
	offeredRate          float64
	secs                 float64 // how long the load ran
	run                  int
	delivered            int64 // its events in the file
	lines                int64 // every line in the file
	events, lost         uint64
	duration             string // the summary's
	attachedToEnd        time.Duration
	missingUnaccountable int64
	err                  error
}

func runThroughput(c config) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if err := checkCluster(ctx); err != nil {
		return "", err
	}
	dir, err := hostDir()
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	load := pod{name: "load", labels: map[string]string{"app": "ktbench-load"}, hostDir: dir,
		command: []string{"/ktbench/ktbench", "load", "-serve", "/ktbench/run"}}
	// The previous run's load is deleted without waiting; while it
	// terminates, applying the new one (another hostPath) fails.
	if _, err := kubectl(ctx, "", "-n", c.ns, "delete", "pod", "load", "--ignore-not-found", "--grace-period=1", "--wait=true", "--timeout=60s"); err != nil {
		return "", fmt.Errorf("deleting the previous run's load pod: %w", err)
	}
	logf("starting pod %s/load", c.ns)
	if err := startPods(ctx, c.ns, []pod{load}); err != nil {
		return "", err
	}
	defer func() {
		if _, err := kubectl(context.Background(), "", "-n", c.ns, "delete", "pod", "load", "--wait=false", "--grace-period=1"); err != nil {
			logf("cleanup: %v", err)
		}
	}()

	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	results := make([][]tputResult, len(tputHooks))
	local := make([][]tputResult, len(tputHooks))
	var errs []error
	id := 0
	for run := 0; run < c.tputRuns; run++ {
		for _, rate := range tputRates(c) {
			// Both hooks at one rate, then the next rate: the machine's
			// load drifts over minutes, and both see the same drift.
			for i, h := range tputHooks {
				if c.only != "" && !strings.Contains(h.name, c.only) {
					continue
				}
				if os.Geteuid() == 0 {
					res := tputLocalOnce(c, self, h, rate)
					if res.err != nil {
						logf("helper only: %s at %s: %v", h.name, rateName(rate), res.err)
					} else {
						logf("helper only: %-36s %-9s offered %9d (%7.0f/s) delivered %9d (%7.0f/s) lost %8d events %9d",
							h.name, rateName(rate), res.offered, res.offeredRate, res.delivered, float64(res.delivered)/res.secs, res.lost, res.events)
					}
					local[i] = append(local[i], res)
				}
				id++
				res := tputOnce(ctx, c, dir, h, rate, id)
				res.run = run + 1
				if res.err != nil {
					logf("%s at %s: %v", h.name, rateName(rate), res.err)
					errs = append(errs, fmt.Errorf("%s at %s: %w", h.name, rateName(rate), res.err))
				} else {
					logf("%-36s %-9s offered %9d (%7.0f/s) delivered %9d (%7.0f/s) lost %8d events %9d summary %s, attached→end %s",
						h.name, rateName(rate), res.offered, res.offeredRate, res.delivered, float64(res.delivered)/res.secs,
						res.lost, res.events, res.duration, res.attachedToEnd.Round(100*time.Millisecond))
				}
				results[i] = append(results[i], res)
			}
		}
	}
	return tputTable(results, local), errors.Join(errs...)
}

// tputLocalOnce is the helper alone: bin/tracer tracing the load in a fake
// container on this machine, its stdout a local file. Set beside the end
// to end run, it tells the helper's limits from the attach stream's.
func tputLocalOnce(c config, self string, h tputHook, rate float64) (res tputResult) {
	res.rate = rate
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fc, err := newFakeContainer()
	if err != nil {
		res.err = err
		return
	}
	defer fc.remove()
	w := exec.CommandContext(ctx, self, "load", "-mode", h.mode, "-for", fmt.Sprintf("%.0fs", tputLoadSeconds), "-rate", fmt.Sprintf("%.0f", rate))
	w.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Cloneflags: syscall.CLONE_NEWNS}
	in, err := w.StdinPipe()
	if err != nil {
		res.err = err
		return
	}
	var wout bytes.Buffer
	w.Stdout = &wout
	if err := w.Start(); err != nil {
		res.err = err
		return
	}
	defer func() {
		syscall.Kill(-w.Process.Pid, syscall.SIGKILL)
		w.Wait()
	}()
	if err := fc.add(w.Process.Pid); err != nil {
		res.err = err
		return
	}
	out, err := os.CreateTemp("", "ktbench-tput-local-*.jsonl")
	if err != nil {
		res.err = err
		return
	}
	defer os.Remove(out.Name())
	defer out.Close()
	args := map[string]string{}
	for _, a := range h.args {
		k, v, _ := strings.Cut(a, "=")
		args[k] = v
	}
	t := &helper{bin: c.tracer, hook: h.hook, args: args, file: out}
	if err := t.start(ctx, w.Process.Pid, fc); err != nil {
		res.err = err
		return
	}
	in.Write([]byte("go\n"))
	w.Wait()
	time.Sleep(200 * time.Millisecond) // what the kernel still holds is drained at stop anyway
	s, err := t.stop()
	if err != nil {
		res.err = err
		return
	}
	var ns, cpu int64
	if _, err := fmt.Sscanf(wout.String(), "ops=%d ns=%d cpu=%d", &res.offered, &ns, &cpu); err != nil || ns == 0 {
		res.err = fmt.Errorf("load said %q", wout.String())
		return
	}
	res.secs = float64(ns) / 1e9
	res.offeredRate = float64(res.offered) / res.secs
	res.events, res.lost = s.events, s.lost
	if _, err := out.Seek(0, 0); err != nil {
		res.err = err
		return
	}
	if res.lines, res.delivered, err = countMatches(out, h.match); err != nil {
		res.err = err
		return
	}
	res.missingUnaccountable = max(0, res.offered-res.delivered-int64(res.lost))
	return res
}

func rateName(r float64) string {
	if r == 0 {
		return "unpaced"
	}
	return fmt.Sprintf("%.0fk/s", r/1e3)
}

// tputOnce arms the load, starts the trace, starts the load once the
// trace is attached, and counts what arrived in the file.
func tputOnce(ctx context.Context, c config, dir string, h tputHook, rate float64, id int) (res tputResult) {
	res.rate = rate
	run := filepath.Join(dir, "run")
	tag := fmt.Sprintf("t%d", id)
	if err := os.WriteFile(filepath.Join(run, "params"), fmt.Appendf(nil, "%s %.0f %.1f %s\n", h.mode, rate, tputLoadSeconds, tag), 0o644); err != nil {
		res.err = err
		return
	}
	arm := filepath.Join(run, "arm")
	if err := os.WriteFile(arm, nil, 0o644); err != nil {
		res.err = err
		return
	}
	if err := waitGone(ctx, arm, 20*time.Second); err != nil {
		res.err = fmt.Errorf("the load did not take its parameters: %w", err)
		return
	}

	out, err := os.CreateTemp("", "ktbench-tput-*.jsonl")
	if err != nil {
		res.err = err
		return
	}
	defer os.Remove(out.Name())
	defer out.Close()
	args := []string{"trace", "-n", c.ns, "pod/load", "--hook", h.hook, "-o", "json", "--duration", tputDuration, "--color", "never"}
	for _, a := range h.args {
		args = append(args, "--arg", a)
	}
	tctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	r, err := startCommand(tctx, out, "", args...)
	if err != nil {
		res.err = err
		return
	}
	for r.attachedAt() < 0 {
		select {
		case <-r.done:
			r.wait()
			os.WriteFile(filepath.Join(run, "cancel"), nil, 0o644)
			logf("kubectl trace ended before attaching; its stderr:\n%s", r.stderrText())
			res.err = fmt.Errorf("kubectl trace ended before attaching: %s", r.failure())
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	attached := time.Now()
	if err := os.WriteFile(filepath.Join(run, "go"), nil, 0o644); err != nil {
		res.err = err
		return
	}
	werr := r.wait()
	res.attachedToEnd = time.Since(attached)
	var ok bool
	res.events, res.lost, res.duration, ok = r.summaryRow(c.ns + "/load/app")
	if werr != nil || !ok {
		logf("kubectl trace failed; its stderr:\n%s", r.stderrText())
		res.err = fmt.Errorf("kubectl trace: %v: %s", werr, r.failure())
		return
	}
	res.offered, res.secs, err = loadResult(ctx, c.ns, tag)
	res.offeredRate = float64(res.offered) / res.secs
	if err != nil {
		res.err = err
		return
	}
	if _, err := out.Seek(0, 0); err != nil {
		res.err = err
		return
	}
	res.lines, res.delivered, err = countMatches(out, h.match)
	if err != nil {
		res.err = err
		return
	}
	// Every call the load made is in the file or counted lost; a call that
	// is neither was lost silently (or fell outside the trace's window).
	res.missingUnaccountable = max(0, res.offered-res.delivered-int64(res.lost))
	return res
}

// waitGone waits until path no longer exists.
func waitGone(ctx context.Context, path string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still there after %s", path, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

var resultLine = regexp.MustCompile(`result id=(\S+) mode=\S+ ops=(\d+) secs=([\d.]+)`)

// loadResult reads the load's line for run tag from the pod's log: the
// calls it made and the seconds it took.
func loadResult(ctx context.Context, ns, tag string) (int64, float64, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := kubectl(ctx, "", "-n", ns, "logs", "load", "--tail", "20")
		if err == nil {
			for _, m := range resultLine.FindAllStringSubmatch(out, -1) {
				if m[1] == tag {
					ops, _ := strconv.ParseInt(m[2], 10, 64)
					secs, _ := strconv.ParseFloat(m[3], 64)
					return ops, secs, nil
				}
			}
		}
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("no result of run %s in the load's log: %v %s", tag, err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// countMatches counts the lines of f and those holding match.
func countMatches(f *os.File, match []byte) (lines, matched int64, err error) {
	br := bufio.NewReaderSize(f, 1<<20)
	for {
		l, err := br.ReadSlice('\n')
		if len(l) > 0 && l[len(l)-1] == '\n' {
			lines++
			if bytes.Contains(l, match) {
				matched++
			}
		}
		if err == bufio.ErrBufferFull {
			// A line longer than the buffer: count it once, at its end.
			for err == bufio.ErrBufferFull {
				_, err = br.ReadSlice('\n')
			}
			lines++
		}
		if err != nil {
			if err.Error() == "EOF" {
				return lines, matched, nil
			}
			return lines, matched, err
		}
	}
}

func tputTable(results, local [][]tputResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n### Throughput: kubectl trace pod/load --hook H -o json --duration %s > file\n\n", tputDuration)
	fmt.Fprintf(&b, "End to end: the load (pod load) starts when the plugin prints \"attached\" and runs %.0f s. Helper only: bin/tracer tracing the same load in a fake container on this machine, its stdout a local file (no attach stream). offered = calls the load made / its seconds; delivered = its events in the file / the same seconds; lost = the summary's LOST (the helper's stats); silent = offered − delivered − lost when positive: calls neither delivered nor counted lost. Target: ≥ 300k events/s delivered end to end with zero loss; any loss reported.\n\n", tputLoadSeconds)
	var verdicts []string
	for i, h := range tputHooks {
		if len(results[i]) == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s (%s):\n\n", h.name, h.note)
		var rows [][]string
		best, bestLocal := 0.0, 0.0
		silent, failed := false, 0
		cells := func(r tputResult) []string {
			if r.err != nil {
				return []string{"failed: " + firstLine(r.err.Error()), "", "", "", ""}
			}
			return []string{fmt.Sprintf("%.0f", r.offeredRate), fmt.Sprintf("%d", r.offered),
				fmt.Sprintf("%.0f", float64(r.delivered)/r.secs), fmt.Sprintf("%d", r.lost), fmt.Sprintf("%d", r.missingUnaccountable)}
		}
		for k, r := range results[i] {
			name := rateName(r.rate)
			if r.run > 1 {
				name += fmt.Sprintf(" (run %d)", r.run)
			}
			row := append([]string{name}, cells(r)...)
			if k < len(local[i]) {
				row = append(row, cells(local[i][k])...)
				if l := local[i][k]; l.err == nil && l.lost == 0 && l.missingUnaccountable == 0 {
					bestLocal = max(bestLocal, float64(l.delivered)/l.secs)
				}
			} else {
				row = append(row, "-", "", "", "", "")
			}
			rows = append(rows, row)
			if r.err != nil {
				failed++
				continue
			}
			if r.lost == 0 && r.missingUnaccountable == 0 {
				best = max(best, float64(r.delivered)/r.secs)
			}
			silent = silent || r.missingUnaccountable > 0
		}
		b.WriteString(table([]string{"asked", "offered/s", "offered", "delivered/s", "lost", "silent",
			"helper only: offered/s", "offered", "delivered/s", "lost", "silent"}, rows))
		b.WriteString("\n")
		switch {
		case failed == len(results[i]):
			verdicts = append(verdicts, fmt.Sprintf("%s: every end-to-end run failed (see the table): NOT MEASURED end to end; helper only, best lossless rate %.0f events/s", h.name, bestLocal))
			continue
		case best >= 300e3:
			verdicts = append(verdicts, fmt.Sprintf("%s: best lossless rate delivered end to end %.0f events/s: MET (target 300k/s); helper only %.0f", h.name, best, bestLocal))
		default:
			verdicts = append(verdicts, fmt.Sprintf("%s: best lossless rate delivered end to end %.0f events/s: MISSED (target 300k/s); helper only %.0f", h.name, best, bestLocal))
		}
		if silent {
			verdicts = append(verdicts, h.name+": some calls were neither delivered nor counted lost (silent column): loss not reported")
		} else {
			verdicts = append(verdicts, h.name+": every call delivered or counted lost in every end-to-end run: no silent loss")
		}
	}
	for _, v := range verdicts {
		b.WriteString("- " + v + "\n")
	}
	return b.String()
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if r := []rune(s); len(r) > 160 {
		s = string(r[:160]) + "…"
	}
	return s
}
