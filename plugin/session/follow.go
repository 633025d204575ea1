package session

import (
	"context"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	corev1 "k8s.io/api/core/v1"
)

// followEvery paces the polls of followed sources.
const followEvery = time.Second

// podRef names a followed pod.
type podRef struct{ namespace, name string }

// follow polls the live sources until stop and calls joined for pods that
// start to run and left for pods that go away. Pods running at the first
// poll are joined too: the helpers started for them claimed them already.
func (s *Session) follow(ctx context.Context, joined func(*corev1.Pod), left func(uid string, ref podRef)) {
	seen := map[string]podRef{}
	first := true
	tick := time.NewTicker(followEvery)
	defer tick.Stop()
	for {
		now := map[string]podRef{}
		for _, src := range s.cfg.Sources {
			if !src.Live() {
				continue
			}
			pods, err := src.listPods(ctx, s.cfg.Client)
			if err != nil {
				if ctx.Err() == nil {
					s.report.warn("following %s: %v", src.What, err)
				}
				continue
			}
			for i := range pods {
				p := &pods[i]
				if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
					continue
				}
				now[string(p.UID)] = podRef{p.Namespace, p.Name}
				if _, ok := seen[string(p.UID)]; !ok || !first {
					joined(p)
				}
			}
		}
		if !first {
			for uid, ref := range seen {
				if _, ok := now[uid]; !ok {
					left(uid, ref)
				}
			}
		}
		seen, first = now, false
		select {
		case <-s.stop.stop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// join traces a pod that started to match: through the running helper of
// its node where the mode shares helpers, or a helper of its own.
func (s *Session) join(ctx context.Context, reg *registry, p *corev1.Pod) {
	t, _, err := targetFromPod(p, s.cfg.Container)
	if err != nil || !reg.claim(t.PodUID) {
		return
	}
	s.report.target(TargetChange{Target: t, State: TargetJoined})
	if h := reg.nodeHelper(t.Node); h != nil && h.add(t) {
		return
	}
	pl, err := reg.plan(t)
	if err != nil {
		s.report.warn("%s", err)
		return
	}
	if err := pl.Helper.preflight(ctx, s.cfg.Client, reg.checked); err != nil {
		s.report.warn("%s/%s cannot be traced: %v", t.Namespace, t.Pod, err)
		return
	}
	if !s.stop.stopped() {
		s.start(ctx, reg, pl)
	}
}

// leave stops tracing a pod that went away.
func (s *Session) leave(reg *registry, uid string, ref podRef) {
	// Announced whether the helper noticed first (its processes gone) or
	// the API server did.
	if reg.forget(uid) {
		s.report.target(TargetChange{Target: wire.Target{Namespace: ref.namespace, Pod: ref.name, PodUID: uid}, State: TargetLeft})
	}
	for _, h := range reg.all() {
		h.remove(uid, "pod deleted")
	}
}
