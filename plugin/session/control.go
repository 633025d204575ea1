package session

import (
	"io"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// send queues b for the helper's stdin. One writer goroutine keeps the
// order (the helper numbers added targets by arrival), and a pipe write
// that blocks on a slow stream never holds the stream's lock.
func (h *stream) send(b []byte) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stdin == nil || h.closed {
		return false
	}
	if h.queue == nil {
		h.queue = make(chan []byte, 256)
		go func(w *io.PipeWriter, q <-chan []byte) {
			for msg := range q {
				if _, err := w.Write(msg); err != nil {
					return
				}
			}
			_ = w.Close()
		}(h.stdin, h.queue)
	}
	select {
	case h.queue <- b:
		return true
	default:
		return false
	}
}

// closeStdin ends the helper's stdin after what is queued: the end of
// stdin is the stop signal.
func (h *stream) closeStdin() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stdin == nil || h.closed {
		return
	}
	h.closed = true
	if h.queue != nil {
		close(h.queue)
		return
	}
	_ = h.stdin.Close()
}

// add asks the running helper to trace one more target; false when the
// helper is not streaming (the caller then starts another helper).
func (h *stream) add(t wire.Target) bool {
	h.mu.Lock()
	if !h.streaming || h.closed {
		h.mu.Unlock()
		return false
	}
	h.targets = append(h.targets, t)
	h.writers = append(h.writers, h.s.tee.target(t))
	h.mu.Unlock()
	line, err := wire.EncodeControl(wire.Control{Add: &t})
	if err != nil {
		return false
	}
	return h.send(line)
}

// remove stops tracing the target with that pod UID.
func (h *stream) remove(podUID, why string) (wire.Target, bool) {
	h.mu.Lock()
	idx := -1
	for i, t := range h.targets {
		if _, done := h.ended[i]; t.PodUID == podUID && !done {
			idx = i
		}
	}
	if idx < 0 {
		h.mu.Unlock()
		return wire.Target{}, false
	}
	h.ended[idx] = targetEnd{why: why}
	t := h.targets[idx]
	h.mu.Unlock()
	if line, err := wire.EncodeControl(wire.Control{Remove: &idx}); err == nil {
		h.send(line)
	}
	return t, true
}

// targetStatus records the helper's per-target reports.
func (h *stream) targetStatus(st wire.Status) {
	if st.Index == nil {
		return
	}
	t, ok := h.target(*st.Index)
	if !ok {
		return
	}
	switch st.Kind {
	case wire.StatusTargetAdded:
		h.s.report.target(TargetChange{Target: t, State: TargetTracing})
	case wire.StatusTargetEnded:
		h.mu.Lock()
		_, already := h.ended[*st.Index]
		if !already {
			h.ended[*st.Index] = targetEnd{why: st.Message, failed: st.Failed}
		}
		h.mu.Unlock()
		// A target removed because its pod went away was announced then.
		if st.Failed || !already {
			h.s.report.target(TargetChange{Target: t, State: TargetEnded, Message: st.Message, Failed: st.Failed})
		}
	}
}

// allEnded says whether every target of the helper ended on its own.
func (h *stream) allEnded() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.targets) > 0 && len(h.ended) == len(h.targets)
}

func (h *stream) target(i int) (wire.Target, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if i < 0 || i >= len(h.targets) {
		return wire.Target{}, false
	}
	return h.targets[i], true
}

// writer returns the outputs of target i.
func (h *stream) writer(i int) (*targetOut, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if i < 0 || i >= len(h.writers) {
		return nil, false
	}
	return h.writers[i], true
}
