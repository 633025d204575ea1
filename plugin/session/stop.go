package session

import (
	"context"
	"sync"
	"time"
)

// Why a session stopped, as its summary says.
const (
	// EndedHelper: every helper ended on its own (no stop was asked for).
	EndedHelper = "helper ended"
	// EndedDuration: Config.Duration passed since the first data.
	EndedDuration = "duration reached"
	// EndedTargets: every pod named (not selected) ended.
	EndedTargets = "targets ended"
	// EndedInterrupted: Interrupt was called.
	EndedInterrupted = "interrupted"
)

// stopper is how a session stops. The first stop is graceful: every helper
// is asked to stop, and flushes (histograms, pcap) and reports its final
// statistics. An interrupt after that is hard: the session stops waiting
// for the helpers, whose data ends where it is, and removes them.
type stopper struct {
	report report
	// stop is closed at the first stop; hard at a hard one.
	stop chan struct{}
	hard chan struct{}

	mu     sync.Mutex
	reason string
}

func newStopper(r report) *stopper {
	return &stopper{report: r, stop: make(chan struct{}), hard: make(chan struct{})}
}

// request stops the session gracefully, for reason; a session that was
// stopped already keeps its first reason.
func (s *stopper) request(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reason == "" {
		s.reason = reason
		close(s.stop)
	}
}

// interrupt is a person's stop: graceful the first time, hard after any
// stop.
func (s *stopper) interrupt() {
	s.mu.Lock()
	stopped := s.reason != ""
	s.mu.Unlock()
	if !stopped {
		s.request(EndedInterrupted)
		return
	}
	select {
	case <-s.hard:
	default:
		s.report.warn("stopping now, without waiting for the helpers")
		close(s.hard)
	}
}

// stopped says whether a stop was asked for.
func (s *stopper) stopped() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// why is how the session ended: the first stop's reason, or EndedHelper.
func (s *stopper) why() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reason == "" {
		return EndedHelper
	}
	return s.reason
}

// until is ctx, cancelled too when ch is closed (stop or hard).
func (s *stopper) until(ctx context.Context, ch <-chan struct{}) (context.Context, context.CancelFunc) {
	c, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-ch:
			cancel()
		case <-c.Done():
		}
	}()
	return c, cancel
}

// after stops the session d after started is closed: the duration counts
// from the moment data flows, not from the command's start, so that a slow
// image pull does not eat into the trace.
func (s *stopper) after(d time.Duration, started <-chan struct{}) {
	select {
	case <-started:
	case <-s.stop:
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		s.request(EndedDuration)
	case <-s.stop:
	}
}
