package session

import (
	"errors"
	"fmt"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// Summary is how a session went, for the user's summary table or the
// session's record.
type Summary struct {
	// Ended is why the session stopped (EndedDuration, EndedInterrupted,
	// a reason given to Stop, …).
	Ended   string
	Targets []TargetResult
	Helpers []HelperResult
}

// TargetResult is how one target went.
type TargetResult struct {
	Target wire.Target
	// Events is the target's records delivered (lines of text or JSON), or
	// the helper's own count when it traced this target only; Lost the
	// events the kernel dropped, known for such a helper only.
	Events, Lost uint64
	// Duration is how long the helper traced.
	Duration time.Duration
	// Ended says how the target ended, in a few words.
	Ended  string
	Failed bool
}

// HelperResult is how one helper went.
type HelperResult struct {
	Node, Name string
	// Targets is the number of targets it traced.
	Targets int
	// Reported says the helper reported final statistics: its Events,
	// Lost and Duration.
	Reported     bool
	Events, Lost uint64
	Duration     time.Duration
	Err          error
}

// summarize collects every helper's results; closeErr is the outputs'.
func (s *Session) summarize(reg *registry, closeErr error) (Summary, error) {
	sum := Summary{Ended: s.stop.why()}
	var errs []error
	for _, h := range reg.all() {
		sum.Targets = append(sum.Targets, h.results(sum.Ended)...)
		hr := h.result()
		sum.Helpers = append(sum.Helpers, hr)
		if hr.Err != nil {
			errs = append(errs, hr.Err)
		}
	}
	if closeErr != nil {
		errs = append(errs, fmt.Errorf("closing output files: %w", closeErr))
	}
	for _, r := range sum.Targets {
		if r.Failed && len(errs) == 0 {
			errs = append(errs, fmt.Errorf("tracing %s failed: %s", r.Target, r.Ended))
		}
	}
	return sum, errors.Join(errs...)
}

// results returns a row per target; ended is how the whole session
// stopped, for targets that did not end on their own.
func (h *stream) results(ended string) []TargetResult {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []TargetResult
	for i, t := range h.targets {
		r := TargetResult{Target: t, Ended: ended, Events: h.s.tee.records(t)}
		if e, ok := h.ended[i]; ok {
			r.Ended, r.Failed = e.why, e.failed
		}
		if h.err != nil {
			r.Ended, r.Failed = "failed", true
		}
		if h.stats != nil {
			r.Duration = seconds(h.stats.Seconds)
			if len(h.targets) == 1 {
				r.Events, r.Lost = h.stats.Events, h.stats.Lost
				if h.stats.Ended != "" && ended == EndedHelper {
					r.Ended = h.stats.Ended
				}
			}
		}
		out = append(out, r)
	}
	return out
}

// result is the helper's own row.
func (h *stream) result() HelperResult {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, name, _ := h.plan.Helper.attachRef()
	r := HelperResult{Node: h.plan.Node, Name: name, Targets: len(h.targets), Err: h.err}
	if h.stats != nil {
		r.Reported, r.Events, r.Lost, r.Duration = true, h.stats.Events, h.stats.Lost, seconds(h.stats.Seconds)
	}
	return r
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
