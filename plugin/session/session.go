package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
)

// Config is everything a session needs, as typed values. The command layer
// builds it from its flags in one place; the engine reads nothing else.
type Config struct {
	// ID names the session: its helpers are named kubectl-trace-ID… and
	// labelled with it.
	ID string
	// Client reaches the API server; Attacher the tracers' streams
	// (NewRemoteAttacher).
	Client   kubernetes.Interface
	Attacher Attacher

	// Sources are the pods to trace, followed while the session runs when
	// they select; or Nodes, the whole nodes to trace. Not both.
	Sources []Source
	Nodes   []string
	// Container is the container to trace in each pod; "" is the pod's
	// default container.
	Container string

	// Hook is the hook to run, with its parameters resolved
	// (hooks.Descriptor.ResolveArgs).
	Hook hooks.Descriptor
	Args map[string]string
	// Format is what the helper writes: hooks.OutputText, OutputJSON or
	// OutputPCAP.
	Format string
	// MaxEvents and MaxBytes stop the helper after that much data; 0 is no
	// limit.
	MaxEvents, MaxBytes int64
	// Duration stops the session that long after the first data; 0 runs it
	// until it is stopped.
	Duration time.Duration

	// Mode is where the tracers run: NodeMode or EphemeralMode.
	Mode       Mode
	Image      string
	Privileged bool
	// StartTimeout bounds each helper's start; StopTimeout its flush and
	// report after a stop.
	StartTimeout, StopTimeout time.Duration

	// Outputs all receive every target's trace data.
	Outputs []Output
	// PerTarget says that the outputs keep each target apart (a file per
	// target) even when there is one: the helper then frames its stdout,
	// and pcap from several targets needs it.
	PerTarget bool
	// Reporter hears the session's progress; nil hears nothing.
	Reporter Reporter
}

// Session is one trace: New, then Run once. Stop and Interrupt may be
// called at any time, from any goroutine.
type Session struct {
	cfg    Config
	report report
	stop   *stopper
	tee    *tee
}

// New checks that cfg names what a session needs.
func New(cfg Config) (*Session, error) {
	switch {
	case cfg.ID == "" || cfg.Hook.Name == "" || cfg.Image == "":
		return nil, errors.New("session: the config needs an ID, a hook and an image")
	case cfg.Client == nil || cfg.Attacher == nil || cfg.Mode == nil:
		return nil, errors.New("session: the config needs a client, an attacher and a mode")
	case (len(cfg.Sources) == 0) == (len(cfg.Nodes) == 0):
		return nil, errors.New("session: the config needs sources or nodes, not both")
	}
	r := report{cfg.Reporter}
	return &Session{cfg: cfg, report: r, stop: newStopper(r), tee: newTee(cfg.Format, cfg.Outputs)}, nil
}

// Stop stops the session gracefully: every helper flushes and reports, and
// is removed. The first reason stays the session's.
func (s *Session) Stop(reason string) { s.stop.request(reason) }

// Interrupt is a person's stop: a graceful stop the first time
// (EndedInterrupted), and after any stop a hard one, which stops waiting
// for the helpers (they are still removed).
func (s *Session) Interrupt() { s.stop.interrupt() }

// Plan resolves the targets and returns the helpers that Run would start,
// and creates nothing (--dry-run).
func (s *Session) Plan(ctx context.Context) ([]Plan, error) {
	_, plans, err := s.prepare(ctx)
	return plans, err
}

// Run traces until the helpers end or the session is stopped, and removes
// every helper on every path. Cancelling ctx is a hard stop; before the
// first helper starts, any stop ends Run at once. The summary says how each
// target and helper ended; the error joins every failure. Run closes the
// outputs before it returns.
func (s *Session) Run(ctx context.Context) (Summary, error) {
	hard, cancel := s.stop.until(ctx, s.stop.hard)
	defer cancel()
	// Nothing runs yet that could flush: a stop cancels the checks.
	early, cancelEarly := s.stop.until(hard, s.stop.stop)
	p, plans, err := s.prepare(early)
	reg := newRegistry(p)
	if err == nil {
		err = s.preflight(early, reg, plans)
	}
	cancelEarly()
	if s.stop.stopped() {
		err = fmt.Errorf("%s before any helper started", s.stop.why())
	}
	if err != nil {
		_ = s.tee.close()
		return Summary{}, err
	}
	return s.trace(hard, reg, plans)
}

// prepare finds the targets of the start, checks their nodes and plans
// their helpers.
func (s *Session) prepare(ctx context.Context) (*planner, []Plan, error) {
	var targets []wire.Target
	if len(s.cfg.Nodes) > 0 {
		targets = nodeTargets(s.cfg.Nodes)
	} else {
		var err error
		if targets, err = initialTargets(ctx, s.cfg.Client, s.cfg.Sources, s.cfg.Container, s.report.step); err != nil {
			return nil, nil, err
		}
	}
	framed := len(targets) > 1 || s.live() || s.cfg.PerTarget
	if s.cfg.Format == hooks.OutputPCAP && framed && !s.cfg.PerTarget {
		return nil, nil, fmt.Errorf("-o pcap with %d target(s) or a selector needs --output-dir DIR: one pcap file per target", len(targets))
	}
	if err := s.checkNodes(ctx, targets); err != nil {
		return nil, nil, err
	}
	s.tee.merged = framed
	p := &planner{cfg: &s.cfg, framed: framed}
	plans, err := p.plans(targets)
	return p, plans, err
}

// checkNodes refuses nodes the helpers cannot run on.
func (s *Session) checkNodes(ctx context.Context, targets []wire.Target) error {
	named := len(s.cfg.Nodes) > 0
	if named {
		// Reading the node is what tells a typo from a node: check the
		// right first, so a refusal says what to ask for.
		if err := checkNodeAccess(ctx, s.cfg.Client); err != nil {
			return err
		}
	}
	nodes, _ := byNode(targets)
	for _, n := range nodes {
		if err := checkNode(ctx, s.cfg.Client, n, named); err != nil {
			return err
		}
	}
	return nil
}

// preflight checks every helper before any is created, then sets up the
// outputs (unless the session was stopped by then).
func (s *Session) preflight(ctx context.Context, reg *registry, plans []Plan) error {
	for _, p := range plans {
		if err := p.Helper.preflight(ctx, s.cfg.Client, reg.checked); err != nil {
			return err
		}
	}
	if s.stop.stopped() {
		return nil
	}
	if n := s.cfg.Mode.notice(s.cfg.ID); n != "" {
		s.report.warn("%s", n)
	}
	return s.tee.prepare()
}

// trace starts the helpers, follows the sources, waits for the end and
// collects how it went; hard ends at a hard stop.
func (s *Session) trace(hard context.Context, reg *registry, plans []Plan) (Summary, error) {
	targets, nodes := 0, map[string]bool{}
	for _, p := range plans {
		targets += len(p.Targets)
		nodes[p.Node] = true
	}
	s.report.done("%d target(s) on %d node(s)", targets, len(nodes))
	for _, p := range plans {
		s.start(hard, reg, p)
	}
	if s.live() {
		go s.follow(hard, func(p *corev1.Pod) { s.join(hard, reg, p) }, func(uid string, ref podRef) { s.leave(reg, uid, ref) })
	}
	if s.cfg.Duration > 0 {
		go s.stop.after(s.cfg.Duration, reg.all()[0].started)
	}
	s.wait(reg)
	s.stop.request(s.stop.why())
	reg.wg.Wait()
	return s.summarize(reg, s.tee.close())
}

// start runs one helper.
func (s *Session) start(hard context.Context, reg *registry, p Plan) {
	h := newStream(s, p)
	reg.add(h, s.cfg.Mode.shared())
	go func() {
		defer reg.wg.Done()
		_ = h.run(hard, s.stop.stop)
		reg.done <- struct{}{}
	}()
}

// progressEvery paces Progress reports and the check whether every named
// target ended.
const progressEvery = 250 * time.Millisecond

// wait returns when every helper ended; with followed sources only once
// the session was stopped too, as pods may still join.
func (s *Session) wait(reg *registry) {
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	live, stop, finished := s.live(), s.stop.stop, 0
	for finished < reg.count() || (live && !s.stop.stopped()) {
		select {
		case <-reg.done:
			finished++
		case <-stop:
			stop = nil
		case <-tick.C:
			s.report.progress(Progress{Events: s.tee.total.Load()})
			// Pods named by the user: when every one has ended, so has
			// the trace.
			if !live && !s.stop.stopped() && reg.allEnded() {
				s.stop.request(EndedTargets)
			}
		}
	}
}

// live says whether some source is followed.
func (s *Session) live() bool {
	for _, src := range s.cfg.Sources {
		if src.Live() {
			return true
		}
	}
	return false
}
