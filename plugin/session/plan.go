package session

import (
	"fmt"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// Plan is what one helper runs: its targets, the request that tells the
// tracer what to do, and the helper that carries the request.
type Plan struct {
	Node    string
	Targets []wire.Target
	Request wire.Request
	Helper  Helper
}

// planner builds plans without touching anything. Helpers are named in the
// order they are planned, the first helper of the session, the ones of
// targets that join later alike: kubectl-trace-ID, kubectl-trace-ID-1, …
type planner struct {
	cfg *Config
	// framed: the helpers write frames (several targets, followed sources,
	// or one output stream per target).
	framed bool
	count  int
}

// plans returns one plan per helper for the targets of the start.
func (p *planner) plans(targets []wire.Target) ([]Plan, error) {
	var out []Plan
	for _, ts := range p.cfg.Mode.group(targets) {
		pl, err := p.plan(ts[0].Node, ts)
		if err != nil {
			return nil, err
		}
		out = append(out, pl)
	}
	return out, nil
}

// plan builds the helper that traces ts on node.
func (p *planner) plan(node string, ts []wire.Target) (Plan, error) {
	cfg := p.cfg
	req := wire.Request{
		Version:   wire.ProtocolVersion,
		SessionID: cfg.ID,
		Hook:      cfg.Hook.Name,
		Args:      cfg.Args,
		Output:    cfg.Format,
		Mode:      cfg.Mode.name(),
		Framed:    p.framed,
		Compress:  true,
		Targets:   ts,
		MaxEvents: cfg.MaxEvents,
		MaxBytes:  cfg.MaxBytes,
	}
	if err := req.Validate(); err != nil {
		return Plan{}, fmt.Errorf("building the request for node %q: %w", node, err)
	}
	encoded, err := req.Encode()
	if err != nil {
		return Plan{}, err
	}
	name := HelperNamePrefix + cfg.ID
	if p.count > 0 {
		name = fmt.Sprintf("%s-%d", name, p.count)
	}
	p.count++
	h := cfg.Mode.build(helperSpec{
		name: name, node: node, targets: ts, request: req, encoded: encoded,
		image: cfg.Image, needs: cfg.Hook.Needs, privileged: cfg.Privileged,
		deadline: helperDeadline(cfg.Duration),
	})
	return Plan{Node: node, Targets: ts, Request: req, Helper: h}, nil
}
