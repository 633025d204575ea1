package runner

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/attach"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// Config is what Run needs besides the request. The zero value is the
// helper's: /proc, /sys/fs/cgroup, the process's standard streams, the
// platform's hooks.
type Config struct {
	// ProcRoot is the host's /proc (the helper runs with hostPID).
	ProcRoot string
	// CgroupRoot is where cgroup hierarchies are mounted.
	CgroupRoot string

	// Stdin carries the plugin's go byte, then its end means stop.
	Stdin io.Reader
	// Stdout receives trace data only.
	Stdout io.Writer
	// Stderr receives wire.Status lines.
	Stderr io.Writer

	// Runtimes are the hook runtimes by kind; nil means DefaultRuntimes.
	Runtimes map[string]attach.Runtime

	// Now is the clock for the session's duration; nil means time.Now.
	Now func() time.Time
	// RefreshInterval is how often a PID-scoped hook learns the processes
	// that joined a target; 0 means one second, negative never.
	RefreshInterval time.Duration
	// FlushInterval bounds how long trace data waits in the buffer; 0
	// means 100 ms.
	FlushInterval time.Duration
}

func (c Config) withDefaults() Config {
	if c.ProcRoot == "" {
		c.ProcRoot = "/proc"
	}
	if c.CgroupRoot == "" {
		c.CgroupRoot = "/sys/fs/cgroup"
	}
	if c.Stdin == nil {
		c.Stdin = os.Stdin
	}
	if c.Stdout == nil {
		c.Stdout = os.Stdout
	}
	if c.Stderr == nil {
		c.Stderr = os.Stderr
	}
	if c.Runtimes == nil {
		c.Runtimes = DefaultRuntimes()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = time.Second
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 100 * time.Millisecond
	}
	return c
}

// Run is one trace session of the helper:
//
//  1. resolve every target on this node (a "resolved" status each);
//  2. attach the hook, so setup errors surface before any data;
//  3. report "ready" and wait for one byte on stdin, the plugin's go
//     (end of stdin or ctx before it: stop cleanly, without data);
//  4. report "started", with the offset of the events' clock to the wall
//     clock (wire.Status.ClockOffset), and stream trace data to stdout
//     until stdin ends (the plugin closes it, or the kubelet when the
//     plugin is gone), ctx is done (SIGTERM, SIGINT) or a limit of the
//     request is reached;
//  5. stop, drain, detach and report "stats".
//
// The plugin attaches to the helper once it runs, so what Run reports
// before the go byte would be lost: every status line but "ready" (which
// also lands in the container's log) is held until the go byte, then
// written in order.
//
// After the go byte stdin carries control messages, one per line
// (wire.Control): Add resolves one more target and hands it to the hook
// (attach.Targets), then reports "target-added" with its index, or
// "target-ended" failed; Remove stops the target and reports
// "target-ended" ("removed"). A line that is no control message is
// a warning. The membership refresh (every RefreshInterval) also finds a
// target whose processes are all gone: "target-ended" once, and the
// session goes on for the others; when none is left in a session that is
// not framed, it stops as at the end of stdin, keeping what the hook still
// drains from the kernel (stats Ended "target ended").
//
// With Request.Framed every byte of stdout is in frames (wire.WriteFrame)
// tagged with the target's index, each holding whole records of that
// target; otherwise stdout holds the records as they are.
//
// A hook that writes bytes (attach.Output.Raw: pcap, tcpdump's lines)
// goes through the same steps; Run cuts its bytes into records. Limits
// count records across targets: MaxEvents stops after that many; MaxBytes stops before
// the first record that would go beyond it (a pcap's file header is always
// written), so stdout never ends in a partial record. The stats then say
// which limit ended the session (Ended) and the session ends cleanly.
//
// It returns nil after a clean stop. On failure it reports an "error"
// status and returns the error; the hook is detached on every path.
func Run(ctx context.Context, req wire.Request, cfg Config) (err error) {
	cfg = cfg.withDefaults()
	st := &statusWriter{w: cfg.Stderr, hold: true}
	defer func() {
		st.release()
		if err != nil {
			st.write(wire.Status{Kind: wire.StatusError, Message: err.Error()})
		}
	}()
	s, err := open(ctx, req, cfg, st)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := s.h.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("detaching hook %q: %w", req.Hook, cerr)
		}
	}()
	// A process forked between the scan and the attach is no child of a
	// traced task: look once more now that the hook follows forks.
	if cfg.RefreshInterval > 0 {
		s.ref = newRefresher(cfg, s.h, s.tg, st, s.gone)
		s.ref.once(false)
	}
	st.writeNow(wire.Status{Kind: wire.StatusReady})
	in := watchStdin(cfg.Stdin)
	defer in.close()
	if !waitGo(ctx, in) {
		return finish(s.h, st, 0, &written{raw: s.raw})
	}
	st.release()
	return s.stream(ctx, in)
}

// open checks the request, resolves its targets and attaches the hook.
func open(ctx context.Context, req wire.Request, cfg Config, st *statusWriter) (*liveSession, error) {
	if err := req.Validate(); err != nil {
		return nil, fmt.Errorf("invalid request: %w", err)
	}
	desc, _ := hooks.Lookup(req.Hook) // Validate checked it exists
	if !slices.Contains(desc.Outputs, req.Output) {
		return nil, fmt.Errorf("hook %q has no %q output: use one of %s", req.Hook, req.Output, strings.Join(desc.Outputs, ", "))
	}
	rt, ok := cfg.Runtimes[desc.Kind]
	if !ok {
		return nil, fmt.Errorf("hook %q of kind %q is not supported by this tracer: use the tracer image of the plugin's release", req.Hook, desc.Kind)
	}
	// The plugin sends the parameters with their defaults; a request
	// built otherwise gets them here.
	args, err := desc.ResolveArgs(req.Args)
	if err != nil {
		return nil, fmt.Errorf("attaching hook %q: %w", req.Hook, err)
	}
	resolved, indexes, err := resolveAll(cfg, req, st)
	if err != nil {
		return nil, err
	}
	tg := newSessionTargets(len(req.Targets))
	for i, r := range resolved {
		tg.add(r, indexes[i])
	}
	a := attach.Attachment{
		Request: req, Hook: desc, Args: args, Targets: resolved,
		Fields:   req.Output == hooks.OutputJSON,
		ProcRoot: cfg.ProcRoot,
		Warn:     func(msg string) { st.write(wire.Status{Kind: wire.StatusWarning, Message: msg}) },
		Log:      st.line,
	}
	if wholeNode(resolved) {
		var err error
		if a.Self, err = selfTIDs(); err != nil {
			a.Warn(fmt.Sprintf("the helper's own events are in the trace: %v", err))
		}
	}
	h, err := rt.Open(ctx, a)
	if err != nil {
		return nil, fmt.Errorf("attaching hook %q: %w", req.Hook, err)
	}
	raw := h.Output().Raw
	if req.Output == hooks.OutputPCAP && !raw {
		h.Close()
		return nil, fmt.Errorf("hook %q writes events, not pcap: use text or json output", req.Hook)
	}
	return &liveSession{cfg: cfg, req: req, st: st, h: h, tg: tg, raw: raw}, nil
}

// wholeNode says whether rs are a whole node.
func wholeNode(rs []attach.Target) bool {
	return slices.ContainsFunc(rs, func(r attach.Target) bool { return r.IsNode() })
}

// waitGo waits for the plugin's go byte; false when stdin ended or ctx was
// done before it came.
func waitGo(ctx context.Context, in *stdinWatch) bool {
	select {
	case <-in.goByte:
		return true
	case <-in.eof:
		// The watcher closes goByte before eof: a go byte followed at once
		// by the end of stdin still starts (and drains) the session.
		select {
		case <-in.goByte:
			return true
		default:
			return false
		}
	case <-ctx.Done():
		return false
	}
}

// stream reports "started", streams the hook's data to stdout until stdin
// ends, ctx is done or a limit is reached, and reports the stats.
func (s *liveSession) stream(ctx context.Context, in *stdinWatch) error {
	clock := s.h.Output().Clock
	s.st.write(withClock(wire.Status{Kind: wire.StatusStarted}, clock))
	start := s.cfg.Now()

	streamCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-in.eof:
			stop()
		case <-streamCtx.Done():
		}
	}()
	// A limit stops the session the way the end of stdin does: the hook
	// drains and stops, and what it still writes is dropped.
	s.out = newOutput(s.cfg.Stdout, s.req.Output, s.cfg.FlushInterval)
	s.out.setLimits(s.req.MaxEvents, s.req.MaxBytes, stop)
	if s.req.Framed {
		s.out.setFramed(s.tg.eventIndex)
	}
	if s.req.Compress {
		s.out.setCompressed()
	}
	if s.req.Text {
		s.out.setText()
	}

	var wg sync.WaitGroup
	if s.ref != nil {
		wg.Go(func() { s.ref.loop(streamCtx) })
	}
	wg.Go(func() { s.control(streamCtx, in.lines, stop) })
	k := &sink{out: s.out, format: s.req.Output, framed: s.req.Framed, tg: s.tg}
	streamErr := s.h.Stream(streamCtx, k)
	if err := k.close(s.st); err != nil && streamErr == nil {
		streamErr = err
	}
	stop()
	wg.Wait()
	outErr := s.out.close()
	if streamErr != nil {
		return fmt.Errorf("tracing: %w", streamErr)
	}
	if outErr != nil {
		return outErr
	}
	return finish(s.h, s.st, s.cfg.Now().Sub(start), &written{out: s.out, raw: s.raw, clock: clock})
}

// withClock adds to st the clock of the events' Time and its offset to
// the wall clock, measured now; st is unchanged when the hook's clock
// cannot be related to the wall clock.
func withClock(st wire.Status, clock string) wire.Status {
	switch clock {
	case wire.ClockRealtime:
		st.Clock = clock
	case wire.ClockMonotonic:
		if off, err := monotonicOffset(); err == nil {
			st.Clock, st.ClockOffset = clock, off
		}
	}
	return st
}
