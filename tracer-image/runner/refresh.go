package runner

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks/attach"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// refresher follows who is in each target: it hands a PID-scoped hook
// (attach.Threads) the threads that joined a target since the last look, and
// tells when a target's processes are all gone.
type refresher struct {
	cfg    Config
	h      attach.Threads // nil: the hook needs no thread ids
	tg     *sessionTargets
	st     *statusWriter
	onGone func(slot int)

	mu    sync.Mutex
	known map[int]map[int]bool // by slot
}

func newRefresher(cfg Config, h attach.Session, tg *sessionTargets, st *statusWriter, onGone func(slot int)) *refresher {
	r := &refresher{cfg: cfg, tg: tg, st: st, onGone: onGone, known: map[int]map[int]bool{}}
	r.h, _ = h.(attach.Threads)
	res, _ := tg.snapshot()
	for slot, t := range res {
		r.track(slot, t.TIDs)
	}
	return r
}

// track sets the threads the hook follows in slot.
func (r *refresher) track(slot int, tids []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[int]bool, len(tids))
	for _, tid := range tids {
		m[tid] = true
	}
	r.known[slot] = m
}

// loop refreshes every cfg.RefreshInterval until ctx is done.
func (r *refresher) loop(ctx context.Context) {
	t := time.NewTicker(r.cfg.RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.once(true)
		}
	}
}

// once looks at every target still traced; gone says whether a target
// without processes ends (not before the session started: the plugin is
// not there to hear it yet, and the stream would find none anyway).
func (r *refresher) once(gone bool) {
	res, look := r.tg.snapshot()
	for slot, tg := range res {
		if !look[slot] || tg.Method == attach.MethodNode {
			// A whole node has no membership to follow, and never goes.
			continue
		}
		m, err := Members(r.cfg.ProcRoot, r.cfg.CgroupRoot, tg)
		if err != nil || len(m.TIDs) == 0 {
			if gone {
				r.onGone(slot)
			}
			continue
		}
		if r.h == nil {
			continue
		}
		var added []int
		now := make(map[int]bool, len(m.TIDs))
		r.mu.Lock()
		for _, tid := range m.TIDs {
			now[tid] = true
			if !r.known[slot][tid] {
				added = append(added, tid)
			}
		}
		r.known[slot] = now
		r.mu.Unlock()
		if len(added) == 0 {
			continue
		}
		if err := r.h.AddThreads(slot, added); err != nil {
			r.st.write(wire.Status{Kind: wire.StatusWarning, Target: &res[slot].Target,
				Message: fmt.Sprintf("following new processes of %s: %v", tg.Target, err)})
		}
	}
}
