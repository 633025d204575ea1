package plugin

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ktrace-dev/kubectl-trace/plugin/session"
)

// ui prints the session's progress, warnings and summary on stderr. It is
// the only writer of stderr during a session, so lines never interleave.
type ui struct {
	mu    sync.Mutex
	out   io.Writer
	s     styles
	quiet bool
	// live is the redrawable status line; only on a colour terminal.
	live string
}

func newUI(out io.Writer, colorMode string, quiet bool) *ui {
	return &ui{out: out, s: newStyles(out, colorMode), quiet: quiet}
}

// step reports progress; quiet hides it.
func (u *ui) step(format string, args ...any) {
	if u.quiet {
		return
	}
	u.println(u.s.step.Render("•") + " " + fmt.Sprintf(format, args...))
}

// ok reports a step that completed.
func (u *ui) ok(format string, args ...any) {
	if u.quiet {
		return
	}
	u.println(u.s.done.Render("✓") + " " + fmt.Sprintf(format, args...))
}

// warn reports something the user should know; quiet does not hide it.
func (u *ui) warn(format string, args ...any) {
	u.println(u.s.warn.Render("warning:") + " " + fmt.Sprintf(format, args...))
}

// passthrough copies a line a tool printed on the helper's stderr.
func (u *ui) passthrough(line []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.clearLive()
	_, _ = u.out.Write(line)
	u.drawLive()
}

func (u *ui) println(line string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.clearLive()
	fmt.Fprintln(u.out, line)
	u.drawLive()
}

// setLive replaces the live line (a running event count). Only colour
// terminals get it: elsewhere a rewritten line is just noise in a log.
func (u *ui) setLive(text string) {
	if u.quiet || !u.s.color {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.clearLive()
	u.live = text
	u.drawLive()
}

func (u *ui) clearLive() {
	if u.live != "" {
		fmt.Fprint(u.out, "\r\033[K")
	}
}

func (u *ui) drawLive() {
	if u.live != "" {
		fmt.Fprint(u.out, u.s.dim.Render(u.live))
	}
}

// endLive removes the live line for good.
func (u *ui) endLive() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.clearLive()
	u.live = ""
}

// sessionResult is one row of the final summary.
type sessionResult struct {
	Target   string
	Hook     string
	Events   uint64
	Lost     uint64
	Duration time.Duration
	// Ended says how the session ended, in a few words.
	Ended  string
	Failed bool
}

// summary prints the final table; quiet hides it unless a session failed.
func (u *ui) summary(results []sessionResult) {
	if len(results) == 0 {
		return
	}
	failed := false
	for _, r := range results {
		failed = failed || r.Failed
	}
	if u.quiet && !failed {
		return
	}
	u.endLive()
	u.mu.Lock()
	defer u.mu.Unlock()
	fmt.Fprint(u.out, renderSummary(u.s, results))
}

func renderSummary(s styles, results []sessionResult) string {
	var rows [][]string
	for _, r := range results {
		lost := fmt.Sprint(r.Lost)
		if r.Lost > 0 {
			lost = s.warn.Render(lost)
		}
		ended := s.done.Render(r.Ended)
		if r.Failed {
			ended = s.fail.Render(r.Ended)
		}
		rows = append(rows, []string{r.Target, r.Hook, fmt.Sprint(r.Events), lost, r.Duration.Round(100 * time.Millisecond).String(), ended})
	}
	return s.table([]string{"TARGET", "HOOK", "EVENTS", "LOST", "DURATION", "ENDED"}, rows)
}

// traceReport prints a trace session's reports through the ui.
type traceReport struct {
	*ui
	hook string
	// counting shows the live event count (records are not counted in pcap).
	counting bool
}

// Note prints a line of progress.
func (r traceReport) Note(n session.Note) {
	switch n.Level {
	case session.Step:
		r.step("%s", n.Text)
	case session.Done:
		r.ok("%s", n.Text)
	case session.Warning:
		r.warn("%s", n.Text)
	case session.Tool:
		r.passthrough([]byte(n.Text + "\n"))
	}
}

// Target prints a target's new state.
func (r traceReport) Target(c session.TargetChange) {
	t := c.Target
	switch c.State {
	case session.TargetFound:
		if t.IsNode() {
			// Nothing to find on a whole node: say what is traced.
			r.ok("tracing %s: %s", t, c.Message)
		} else {
			r.ok("found %s: %d processes (%s)", t, c.Processes, c.Method)
		}
	case session.TargetJoined:
		r.step("+ pod %s/%s joined on node %q", t.Namespace, t.Pod, t.Node)
	case session.TargetTracing:
		r.ok("tracing %s on node %q", t, t.Node)
	case session.TargetEnded:
		if c.Failed {
			r.warn("%s: %s", t, c.Message)
		} else {
			r.step("%s: %s", t, c.Message)
		}
	case session.TargetLeft:
		r.step("- pod %s/%s left", t.Namespace, t.Pod)
	}
}

// Helper prints that a helper traces.
func (r traceReport) Helper(c session.HelperChange) {
	if c.State == session.HelperAttached {
		r.ok("attached: tracing with hook %s, Ctrl-C to stop", r.hook)
	}
}

// Progress redraws the live event count.
func (r traceReport) Progress(p session.Progress) {
	if r.counting {
		r.setLive(fmt.Sprintf("%d events", p.Events))
	}
}

// summarize prints how the session went: lost events of shared helpers,
// the summary table, and the files written.
func (r traceReport) summarize(sum session.Summary, files []string) {
	r.endLive()
	for _, h := range sum.Helpers {
		if h.Reported && h.Lost > 0 && h.Targets > 1 {
			r.warn("node %q: %d events lost in the kernel", h.Node, h.Lost)
		}
	}
	var rows []sessionResult
	for _, t := range sum.Targets {
		rows = append(rows, sessionResult{Target: t.Target.String(), Hook: r.hook, Events: t.Events, Lost: t.Lost,
			Duration: t.Duration, Ended: t.Ended, Failed: t.Failed})
	}
	r.summary(rows)
	for _, p := range files {
		r.step("wrote %s", p)
	}
}
