package session

import (
	"sync"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// registry is what a running session knows about its helpers and targets:
// every helper started, the helper of each node that joining targets are
// added to, and the pods traced, by UID, so that none is traced twice.
type registry struct {
	mu      sync.Mutex
	helpers []*stream
	byNode  map[string]*stream
	known   map[string]bool
	// planner numbers the helpers of joining targets after the first ones.
	planner *planner
	// checked holds the namespaces preflight checked; only the follower
	// adds to it once the session runs.
	checked map[string]bool

	wg sync.WaitGroup
	// done receives one value per helper that ended.
	done chan struct{}
}

func newRegistry(p *planner) *registry {
	return &registry{byNode: map[string]*stream{}, known: map[string]bool{}, planner: p,
		checked: map[string]bool{}, done: make(chan struct{}, 64)}
}

// add records a helper; shared says that targets joining on its node are
// added to it.
func (r *registry) add(h *stream, shared bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.helpers = append(r.helpers, h)
	if shared {
		r.byNode[h.plan.Node] = h
	}
	for _, t := range h.plan.Targets {
		r.known[t.PodUID] = true
	}
	r.wg.Add(1)
}

// claim marks a pod as traced; false when it was already.
func (r *registry) claim(uid string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.known[uid] {
		return false
	}
	r.known[uid] = true
	return true
}

// forget drops a pod that went away, and says whether it was traced.
func (r *registry) forget(uid string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	traced := r.known[uid]
	delete(r.known, uid)
	return traced
}

// nodeHelper returns the helper that targets joining on node go to.
func (r *registry) nodeHelper(node string) *stream {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byNode[node]
}

// plan builds a joining target's own helper.
func (r *registry) plan(t wire.Target) (Plan, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.planner.plan(t.Node, []wire.Target{t})
}

// all returns every helper started so far.
func (r *registry) all() []*stream {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*stream(nil), r.helpers...)
}

// count is the number of helpers started so far.
func (r *registry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.helpers)
}

// allEnded says whether every target of every helper ended on its own.
func (r *registry) allEnded() bool {
	hs := r.all()
	all := len(hs) > 0
	for _, h := range hs {
		all = all && h.allEnded()
	}
	return all
}
