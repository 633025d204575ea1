package runner

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks/attach"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// liveSession is what the goroutines of a running session share.
type liveSession struct {
	cfg Config
	req wire.Request
	st  *statusWriter
	h   attach.Session
	raw bool // the hook writes bytes (attach.Output.Raw)
	tg  *sessionTargets
	ref *refresher
	out *output // set at the go byte
}

// control handles the control messages until ctx is done; a stop message
// ends the session as the end of stdin does.
func (s *liveSession) control(ctx context.Context, lines <-chan []byte, stop func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case line, ok := <-lines:
			if !ok {
				return
			}
			if len(strings.TrimSpace(string(line))) == 0 {
				continue
			}
			c, err := wire.DecodeControl(line)
			if err != nil {
				s.st.write(wire.Status{Kind: wire.StatusWarning, Message: fmt.Sprintf("ignoring a control message: %v", err)})
				continue
			}
			switch {
			case c.Stop:
				stop()
				return
			case c.Add != nil:
				s.add(*c.Add)
			default:
				s.remove(*c.Remove)
			}
		}
	}
}

// add traces one more target, under the next index.
func (s *liveSession) add(t wire.Target) {
	idx := s.tg.nextIndex()
	fail := func(msg string) {
		s.st.write(wire.Status{Kind: wire.StatusTargetEnded, Index: &idx, Target: &t, Failed: true, Message: msg})
	}
	if !s.req.Framed {
		fail("a target can only join a framed session")
		return
	}
	adder, ok := s.h.(attach.Targets)
	if !ok {
		fail(fmt.Sprintf("hook %q cannot add a target while it runs", s.req.Hook))
		return
	}
	if t.IsNode() {
		fail("a whole node is the only target of its session: trace it in a session of its own")
		return
	}
	if len(t.RuntimeID()) < 12 {
		fail(fmt.Sprintf("container id %q is too short to match", t.ContainerID))
		return
	}
	r, err := ResolveMode(s.cfg.ProcRoot, t, s.req.Mode)
	if err != nil {
		fail(err.Error())
		return
	}
	slot := s.tg.addPending(r, idx)
	if s.ref != nil {
		s.ref.track(slot, r.TIDs)
	}
	if err := adder.AddTarget(slot, r); err != nil {
		s.tg.end(slot)
		fail(fmt.Sprintf("adding %s: %v", t, err))
		return
	}
	s.tg.settle(slot)
	s.st.write(wire.Status{Kind: wire.StatusTargetAdded, Index: &idx, Target: &t, Method: r.Method, PIDs: r.PIDs})
}

// remove stops tracing the target with session index idx.
func (s *liveSession) remove(idx int) {
	slot, ok := s.tg.slotOf(idx)
	if !ok {
		// A target that was not found or failed to join ended already.
		if !s.tg.known(idx) {
			s.st.write(wire.Status{Kind: wire.StatusWarning, Message: fmt.Sprintf("ignoring a control message: no target %d to remove", idx)})
		}
		return
	}
	if s.stopTarget(slot) {
		s.st.write(wire.Status{Kind: wire.StatusTargetEnded, Index: &idx, Message: msgRemoved})
	}
}

// stopTarget ends slot: its data is dropped from now on and the hook stops
// collecting it. It returns false when it had ended.
func (s *liveSession) stopTarget(slot int) bool {
	if !s.tg.end(slot) {
		return false
	}
	if rm, ok := s.h.(attach.Targets); ok {
		if err := rm.RemoveTarget(slot); err != nil {
			s.st.write(wire.Status{Kind: wire.StatusWarning, Message: fmt.Sprintf("removing target %d: %v", s.tg.indexOfSlot(slot), err)})
		}
	}
	return true
}

// gone ends slot whose processes are all gone; a session that is not
// framed ends when no target is left.
func (s *liveSession) gone(slot int) {
	if !s.req.Framed && s.out != nil && s.tg.liveCount() == 1 {
		// The only target: the session stops with it still attached, so
		// that the hook drains its last events from the kernel (removing
		// it first dropped them).
		if !s.tg.end(slot) {
			return
		}
		idx := s.tg.indexOfSlot(slot)
		s.st.write(wire.Status{Kind: wire.StatusTargetEnded, Index: &idx, Message: msgGone})
		s.out.stopSession(endedTarget)
		return
	}
	if !s.stopTarget(slot) {
		return
	}
	idx := s.tg.indexOfSlot(slot)
	s.st.write(wire.Status{Kind: wire.StatusTargetEnded, Index: &idx, Message: msgGone})
}

// written is what a session wrote to stdout: out is nil when it never
// started.
type written struct {
	out   *output
	raw   bool
	clock string // the clock of the events' Time
}

// finish detaches the hook (so its statistics are final) and reports them:
// the hook's events and losses; the events are the records written when
// Run cut them (a raw hook's, or when a limit ended the session).
func finish(h attach.Session, st *statusWriter, d time.Duration, w *written) error {
	if err := h.Close(); err != nil {
		return fmt.Errorf("detaching hook: %w", err)
	}
	s := h.Stats()
	status := wire.Status{Kind: wire.StatusStats, Events: s.Events, Lost: s.Lost, Seconds: d.Seconds()}
	if w != nil {
		var events int64 // nothing was written when the session never started
		var ended string
		if w.out != nil {
			events, _, ended = w.out.counts()
		}
		if w.raw || ended != "" {
			status.Events = uint64(events)
		}
		status.Ended = ended
	}
	if w != nil && w.out != nil {
		// Measured again at the end: the node's clock may have been
		// slewed meanwhile.
		status = withClock(status, w.clock)
	}
	st.write(status)
	return nil
}
