package runner

import (
	"sync"

	"github.com/ktrace-dev/kubectl-trace/hooks/attach"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// Why a target ended, as StatusTargetEnded says it.
const (
	msgRemoved = "removed"
	msgGone    = "its processes are gone (pod deleted or container exited)"
)

// sessionTargets is the session's targets as the hook numbers them (slots,
// see TargetAdder) with their index in the session, and which are still
// traced. It is shared by the stream (whose events it attributes), the
// control messages and the membership refresh.
type sessionTargets struct {
	mu    sync.Mutex
	res   []attach.Target // by slot
	index []int           // by slot: the session index
	live  []bool          // by slot
	// settled is false while the hook takes the slot (AddTarget): the
	// refresh leaves it alone until then.
	settled []bool
	// bySlotKey finds the slot of an event from its target's names; a
	// name used twice (a pod deleted and made again) is the latest slot.
	byKey map[targetKey]int
	next  int // the session index of the next Control.Add

	// last caches the latest lookup: events of one target come in runs.
	lastKey  targetKey
	lastSlot int
}

type targetKey struct{ namespace, pod, container string }

func keyOf(t wire.Target) targetKey { return targetKey{t.Namespace, t.Pod, t.Container} }

func newSessionTargets(requested int) *sessionTargets {
	return &sessionTargets{byKey: map[targetKey]int{}, next: requested, lastSlot: -1}
}

// add gives r the next slot, with session index idx, traced.
func (t *sessionTargets) add(r attach.Target, idx int) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	slot := len(t.res)
	t.res = append(t.res, r)
	t.index = append(t.index, idx)
	t.live = append(t.live, true)
	t.settled = append(t.settled, true)
	t.byKey[keyOf(r.Target)] = slot
	t.lastSlot = -1
	return slot
}

// addPending is add for a slot the hook has not taken yet: events find
// it, the refresh does not look at it before settle.
func (t *sessionTargets) addPending(r attach.Target, idx int) int {
	slot := t.add(r, idx)
	t.mu.Lock()
	t.settled[slot] = false
	t.mu.Unlock()
	return slot
}

// settle lets the refresh look at slot.
func (t *sessionTargets) settle(slot int) {
	t.mu.Lock()
	t.settled[slot] = true
	t.mu.Unlock()
}

// nextIndex returns the session index of the next added target.
func (t *sessionTargets) nextIndex() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	i := t.next
	t.next++
	return i
}

// end marks slot as no longer traced; false when it already was.
func (t *sessionTargets) end(slot int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if slot < 0 || slot >= len(t.live) || !t.live[slot] {
		return false
	}
	t.live[slot] = false
	t.lastSlot = -1
	return true
}

// slotOf returns the slot of the target with session index idx.
func (t *sessionTargets) slotOf(idx int) (int, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for s, i := range t.index {
		if i == idx {
			return s, true
		}
	}
	return 0, false
}

// known says whether idx is the index of a target of the session, found
// or not.
func (t *sessionTargets) known(idx int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return idx >= 0 && idx < t.next
}

// isLive says whether slot is still traced.
func (t *sessionTargets) isLive(slot int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slot >= 0 && slot < len(t.live) && t.live[slot]
}

// liveCount returns how many targets are still traced.
func (t *sessionTargets) liveCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, l := range t.live {
		if l {
			n++
		}
	}
	return n
}

// snapshot returns the slots' resolutions and whether the refresh should
// look at each: traced, and taken by the hook.
func (t *sessionTargets) snapshot() (res []attach.Target, look []bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	look = make([]bool, len(t.live))
	for i := range look {
		look[i] = t.live[i] && t.settled[i]
	}
	return append([]attach.Target(nil), t.res...), look
}

// indexOfSlot returns slot's session index.
func (t *sessionTargets) indexOfSlot(slot int) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.index[slot]
}

// eventIndex returns the session index of ev's target; false when it is
// no target that is still traced (the event is dropped).
func (t *sessionTargets) eventIndex(ev *wire.Event) (int, bool) {
	k := targetKey{ev.Namespace, ev.Pod, ev.Container}
	t.mu.Lock()
	defer t.mu.Unlock()
	slot := t.lastSlot
	if slot < 0 || k != t.lastKey {
		s, ok := t.byKey[k]
		if !ok {
			return 0, false
		}
		slot, t.lastKey, t.lastSlot = s, k, s
	}
	if !t.live[slot] {
		return 0, false
	}
	return t.index[slot], true
}
