package plugin

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
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

// countingLines counts newline-terminated records written through it.
func countLines(p []byte) uint64 {
	return uint64(strings.Count(string(p), "\n"))
}
