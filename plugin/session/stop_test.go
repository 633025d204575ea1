package session

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// notes records a session's reports.
type notes struct {
	mu      sync.Mutex
	lines   []Note
	targets []TargetChange
	helpers []HelperChange
}

func (n *notes) Note(x Note) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.lines = append(n.lines, x)
}

func (n *notes) Target(c TargetChange) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.targets = append(n.targets, c)
}

func (n *notes) Helper(c HelperChange) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.helpers = append(n.helpers, c)
}

func (n *notes) Progress(Progress) {}

func (n *notes) warnings() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, l := range n.lines {
		if l.Level == Warning {
			out = append(out, l.Text)
		}
	}
	return out
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestStopperFirstGracefulThenHard(t *testing.T) {
	var n notes
	s := newStopper(report{&n})
	if s.stopped() || s.why() != EndedHelper {
		t.Fatalf("a new stopper is stopped %v, why %q", s.stopped(), s.why())
	}
	hard, cancel := s.until(context.Background(), s.hard)
	defer cancel()

	s.interrupt()
	if !s.stopped() || closed(s.hard) || s.why() != EndedInterrupted {
		t.Fatalf("first interrupt: stopped %v, hard %v, why %q; want a graceful stop, interrupted", s.stopped(), closed(s.hard), s.why())
	}
	s.request(EndedDuration)
	if s.why() != EndedInterrupted || closed(s.hard) {
		t.Errorf("a later graceful stop changed the reason to %q or stopped hard", s.why())
	}
	s.interrupt()
	s.interrupt()
	if !closed(s.hard) {
		t.Fatal("a second interrupt did not stop hard")
	}
	select {
	case <-hard.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the hard stop did not cancel the hard context")
	}
	if diff := cmp.Diff([]string{"stopping now, without waiting for the helpers"}, n.warnings()); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

// After a stop of another kind, one interrupt is already the second stop.
func TestStopperInterruptAfterAnotherStop(t *testing.T) {
	s := newStopper(report{})
	s.request("stdout closed")
	s.interrupt()
	if !closed(s.hard) || s.why() != "stdout closed" {
		t.Errorf("hard %v, why %q; want hard, and the first reason kept", closed(s.hard), s.why())
	}
}

func TestStopperDurationCountsFromTheFirstData(t *testing.T) {
	s := newStopper(report{})
	started := make(chan struct{})
	done := make(chan struct{})
	go func() {
		s.after(time.Millisecond, started)
		close(done)
	}()
	close(started)
	select {
	case <-s.stop:
	case <-time.After(5 * time.Second):
		t.Fatal("the duration passed without a stop")
	}
	<-done
	if s.why() != EndedDuration {
		t.Errorf("why = %q, want %q", s.why(), EndedDuration)
	}

	// Stopped before any data: the timer ends without a say.
	s = newStopper(report{})
	done = make(chan struct{})
	go func() {
		s.after(time.Millisecond, make(chan struct{}))
		close(done)
	}()
	s.request(EndedInterrupted)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the timer of a session that never started outlived the stop")
	}
	if s.why() != EndedInterrupted {
		t.Errorf("why = %q, want %q", s.why(), EndedInterrupted)
	}
}
