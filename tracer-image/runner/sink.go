package runner

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// sink is where a session's hook writes (attach.Sink): events to the
// output, bytes through raw writers that cut them into records, one for
// the whole stream or, framed, one per target.
type sink struct {
	out    *output
	format string
	framed bool
	tg     *sessionTargets

	mu      sync.Mutex
	shared  *rawWriter         // not framed
	writers map[int]*rawWriter // framed, by slot
}

func (k *sink) Emit(ev *wire.Event, details string) error { return k.out.emit(ev, details) }

// Raw returns slot's writer: framed, one of its own, whose records are
// framed with the target's session index and dropped once it ended.
func (k *sink) Raw(slot int) io.Writer {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.framed {
		if k.shared == nil {
			k.shared = newRawWriter(k.out, k.format)
		}
		return k.shared
	}
	if w, ok := k.writers[slot]; ok {
		return w
	}
	if k.writers == nil {
		k.writers = map[int]*rawWriter{}
	}
	w := newTargetRawWriter(k.out, k.format, k.tg.indexOfSlot(slot), func() bool { return !k.tg.isLive(slot) })
	k.writers[slot] = w
	return w
}

// close ends the raw writers' streams and warns of a pcap cut short.
func (k *sink) close(st *statusWriter) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	ws := make([]*rawWriter, 0, len(k.writers)+1)
	if k.shared != nil {
		ws = append(ws, k.shared)
	}
	for _, w := range k.writers {
		ws = append(ws, w)
	}
	var errs []error
	for _, w := range ws {
		dropped, err := w.close()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if dropped > 0 {
			st.write(wire.Status{Kind: wire.StatusWarning, Message: fmt.Sprintf("the hook's output ended inside a pcap record: its last %d bytes were dropped", dropped)})
		}
	}
	return errors.Join(errs...)
}
