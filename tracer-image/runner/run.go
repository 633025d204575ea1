package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks"
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

	// Attachers are the hook runtimes by kind; nil means DefaultAttachers.
	Attachers map[string]Attacher

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
	if c.Attachers == nil {
		c.Attachers = DefaultAttachers()
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
//  4. report "started" and stream trace data to stdout until stdin ends
//     (the plugin closes it, or the kubelet when the plugin is gone), ctx
//     is done (SIGTERM, SIGINT) or a limit of the request is reached;
//  5. stop, drain, detach and report "stats".
//
// The plugin attaches to the helper once it runs, so what Run reports
// before the go byte would be lost: every status line but "ready" (which
// also lands in the container's log) is held until the go byte, then
// written in order.
//
// After the go byte stdin carries control messages, one per line
// (wire.Control): Add resolves one more target and hands it to the hook
// (TargetAdder), then reports "target-added" with its index, or
// "target-ended" failed; Remove stops the target (TargetRemover) and
// reports "target-ended" ("removed"). A line that is no control message is
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
// A hook that writes bytes (RawHook: pcap, tcpdump's lines) goes through
// the same steps; Run cuts its bytes into records. Limits count records
// across targets: MaxEvents stops after that many; MaxBytes stops before
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

	if err := req.Validate(); err != nil {
		return fmt.Errorf("invalid request: %w", err)
	}
	desc, _ := hooks.Lookup(req.Hook) // Validate checked it exists
	if !slices.Contains(desc.Outputs, req.Output) {
		return fmt.Errorf("hook %q has no %q output: use one of %s", req.Hook, req.Output, strings.Join(desc.Outputs, ", "))
	}
	attacher, ok := cfg.Attachers[desc.Kind]
	if !ok {
		return fmt.Errorf("hook %q of kind %q is not supported by this tracer: use the tracer image of the plugin's release", req.Hook, desc.Kind)
	}

	resolved, indexes, err := resolveAll(cfg, req, st)
	if err != nil {
		return err
	}
	tg := newSessionTargets(len(req.Targets))
	for i, r := range resolved {
		tg.add(r, indexes[i])
	}

	h, err := attacher.Attach(ctx, Attachment{
		Request:  req,
		Hook:     desc,
		Targets:  resolved,
		Fields:   req.Output == hooks.OutputJSON,
		ProcRoot: cfg.ProcRoot,
		Warn:     func(msg string) { st.write(wire.Status{Kind: wire.StatusWarning, Message: msg}) },
		Log:      st.line,
	})
	if err != nil {
		return fmt.Errorf("attaching hook %q: %w", req.Hook, err)
	}
	defer func() {
		if cerr := h.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("detaching hook %q: %w", req.Hook, cerr)
		}
	}()
	raw, isRaw := h.(RawHook)
	if req.Output == hooks.OutputPCAP && !isRaw {
		return fmt.Errorf("hook %q writes events, not pcap: use text or json output", req.Hook)
	}
	rawTargets, perTarget := h.(TargetRawHook)
	if isRaw && req.Framed && !perTarget && len(resolved) > 1 {
		return fmt.Errorf("hook %q cannot write its targets' data apart: trace one target per session", req.Hook)
	}
	s := &liveSession{cfg: cfg, req: req, st: st, h: h, tg: tg}
	// A process forked between the scan and the attach is no child of a
	// traced task: look once more now that the hook follows forks.
	if cfg.RefreshInterval > 0 {
		s.ref = newRefresher(cfg, h, tg, st, s.gone)
		s.ref.once(false)
	}
	st.writeNow(wire.Status{Kind: wire.StatusReady})

	in := watchStdin(cfg.Stdin)
	defer in.close()
	select {
	case <-in.goByte:
	case <-in.eof:
		// The watcher closes goByte before eof: a go byte followed at once
		// by the end of stdin still starts (and drains) the session.
		select {
		case <-in.goByte:
		default:
			return finish(h, st, 0, &written{raw: isRaw})
		}
	case <-ctx.Done():
		return finish(h, st, 0, &written{raw: isRaw})
	}
	st.release()
	st.write(wire.Status{Kind: wire.StatusStarted})
	start := cfg.Now()

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
	out := newOutput(cfg.Stdout, req.Output, cfg.FlushInterval)
	out.setLimits(req.MaxEvents, req.MaxBytes, stop)
	if req.Framed {
		out.setFramed(tg.eventIndex)
	}
	if req.Compress {
		out.setCompressed()
	}
	s.out = out

	var wg sync.WaitGroup
	if s.ref != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.ref.loop(streamCtx)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.control(streamCtx, in.lines, stop)
	}()

	var streamErr error
	switch {
	case isRaw && req.Framed && perTarget:
		var (
			mu      sync.Mutex
			writers = map[int]*rawWriter{}
		)
		streamErr = rawTargets.StreamRawTargets(streamCtx, func(slot int) io.Writer {
			mu.Lock()
			defer mu.Unlock()
			if w, ok := writers[slot]; ok {
				return w
			}
			w := newTargetRawWriter(out, req.Output, tg.indexOfSlot(slot), func() bool { return !tg.isLive(slot) })
			writers[slot] = w
			return w
		})
		mu.Lock()
		for _, w := range writers {
			if err := s.closeRaw(w); err != nil && streamErr == nil {
				streamErr = err
			}
		}
		mu.Unlock()
	case isRaw:
		rw := newRawWriter(out, req.Output)
		if req.Framed {
			rw = newTargetRawWriter(out, req.Output, tg.indexOfSlot(0), func() bool { return !tg.isLive(0) })
		}
		streamErr = raw.StreamRaw(streamCtx, rw)
		if err := s.closeRaw(rw); err != nil && streamErr == nil {
			streamErr = err
		}
	default:
		streamErr = h.Stream(streamCtx, out.emit)
	}
	stop()
	wg.Wait()
	outErr := out.close()
	if streamErr != nil {
		return fmt.Errorf("tracing: %w", streamErr)
	}
	if outErr != nil {
		return outErr
	}
	return finish(h, st, cfg.Now().Sub(start), &written{out: out, raw: isRaw})
}

// liveSession is what the goroutines of a running session share.
type liveSession struct {
	cfg Config
	req wire.Request
	st  *statusWriter
	h   Hook
	tg  *sessionTargets
	ref *refresher
	out *output // set at the go byte
}

// closeRaw ends a raw writer's stream and warns of a pcap cut short.
func (s *liveSession) closeRaw(rw *rawWriter) error {
	dropped, err := rw.close()
	if err != nil {
		return err
	}
	if dropped > 0 {
		s.st.write(wire.Status{Kind: wire.StatusWarning, Message: fmt.Sprintf("the hook's output ended inside a pcap record: its last %d bytes were dropped", dropped)})
	}
	return nil
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
	adder, ok := s.h.(TargetAdder)
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
	if rm, ok := s.h.(TargetRemover); ok {
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
	out *output
	raw bool
}

// finish detaches the hook (so its statistics are final) and reports them:
// the hook's events and losses; the events are the records written when
// Run cut them (a raw hook's, or when a limit ended the session).
func finish(h Hook, st *statusWriter, d time.Duration, w *written) error {
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
	st.write(status)
	return nil
}

// resolveAll resolves every target and returns those found with their
// index in the request. A target that is not found is a warning when
// others are (framed: a failed "target-ended" of its index); the session
// fails when none is.
func resolveAll(cfg Config, req wire.Request, st *statusWriter) ([]Resolution, []int, error) {
	targets, framed := req.Targets, req.Framed
	var (
		found   []Resolution
		indexes []int
		errs    []error
		missed  []int
	)
	for i, t := range targets {
		r, err := ResolveMode(cfg.ProcRoot, t, req.Mode)
		if err != nil {
			errs = append(errs, err)
			missed = append(missed, i)
			continue
		}
		if r.Method == MethodNode {
			idx := i
			st.write(wire.Status{Kind: wire.StatusResolved, Target: &r.Target, Index: &idx, Method: r.Method,
				Message: "the whole node: every task, host processes and every container's"})
			found = append(found, r)
			indexes = append(indexes, i)
			continue
		}
		msg := fmt.Sprintf("%s, %s in cgroup %s", plural(len(r.PIDs), "process", "processes"), plural(len(r.TIDs), "thread", "threads"),
			strings.Join(cgroupPaths(r.Cgroups), ", "))
		if m, err := Members(cfg.ProcRoot, cfg.CgroupRoot, r); err == nil {
			msg += "; processes that join later are found in " + m.Source
		}
		idx := i
		st.write(wire.Status{Kind: wire.StatusResolved, Target: &r.Target, Index: &idx, Method: r.Method, PIDs: r.PIDs, Message: msg})
		found = append(found, r)
		indexes = append(indexes, i)
	}
	if len(found) == 0 {
		return nil, nil, errors.Join(errs...)
	}
	for j, err := range errs {
		s := wire.Status{Kind: wire.StatusWarning, Message: err.Error()}
		if nf := (*NotFoundError)(nil); errors.As(err, &nf) {
			t := nf.Target
			s.Target = &t
		}
		if framed {
			idx := missed[j]
			t := targets[idx]
			s = wire.Status{Kind: wire.StatusTargetEnded, Index: &idx, Target: &t, Failed: true, Message: err.Error()}
		}
		st.write(s)
	}
	return found, indexes, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// cgroupPaths returns the distinct paths of cgs, in order.
func cgroupPaths(cgs []Cgroup) []string {
	var out []string
	for _, c := range cgs {
		if !slices.Contains(out, c.Path) {
			out = append(out, c.Path)
		}
	}
	return out
}

// refresher follows who is in each target: it hands a PID-scoped hook
// (Refresher) the threads that joined a target since the last look, and
// tells when a target's processes are all gone.
type refresher struct {
	cfg    Config
	h      Refresher // nil: the hook needs no pids
	tg     *sessionTargets
	st     *statusWriter
	onGone func(slot int)

	mu    sync.Mutex
	known map[int]map[int]bool // by slot
}

func newRefresher(cfg Config, h Hook, tg *sessionTargets, st *statusWriter, onGone func(slot int)) *refresher {
	r := &refresher{cfg: cfg, tg: tg, st: st, onGone: onGone, known: map[int]map[int]bool{}}
	r.h, _ = h.(Refresher)
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
		if !look[slot] || tg.Method == MethodNode {
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
		if err := r.h.AddPIDs(slot, added); err != nil {
			r.st.write(wire.Status{Kind: wire.StatusWarning, Target: &res[slot].Target,
				Message: fmt.Sprintf("following new processes of %s: %v", tg.Target, err)})
		}
	}
}

// statusWriter writes wire.Status lines from several goroutines. While
// hold is set it keeps them, in order, until release.
type statusWriter struct {
	mu   sync.Mutex
	w    io.Writer
	hold bool
	held [][]byte
}

func (s *statusWriter) write(st wire.Status) {
	b, err := json.Marshal(st)
	if err != nil {
		return
	}
	s.put(append(b, '\n'), false)
}

// writeNow writes st at once, even while others are held.
func (s *statusWriter) writeNow(st wire.Status) {
	b, err := json.Marshal(st)
	if err != nil {
		return
	}
	s.put(append(b, '\n'), true)
}

// line writes a line a tool printed, as it is, between status lines.
func (s *statusWriter) line(l string) {
	s.put([]byte(strings.TrimRight(l, "\n")+"\n"), false)
}

func (s *statusWriter) put(b []byte, now bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold && !now {
		s.held = append(s.held, b)
		return
	}
	// A failing stderr means the plugin is gone; nothing is left to tell.
	_, _ = s.w.Write(b)
}

// release writes what was held and stops holding.
func (s *statusWriter) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.held {
		_, _ = s.w.Write(b)
	}
	s.held, s.hold = nil, false
}

// stdinWatch follows the plugin's end of stdin: goByte closes at the first
// byte, eof when stdin ends (or fails); the bytes after the first are cut
// into lines (control messages) for lines.
type stdinWatch struct {
	goByte chan struct{}
	eof    chan struct{}
	lines  chan []byte
	quit   chan struct{}
	once   sync.Once
}

// maxControlLine bounds a control line; a longer one is dropped whole.
const maxControlLine = 64 << 10

func watchStdin(r io.Reader) *stdinWatch {
	w := &stdinWatch{goByte: make(chan struct{}), eof: make(chan struct{}),
		lines: make(chan []byte, 16), quit: make(chan struct{})}
	go func() {
		defer close(w.lines)
		buf := make([]byte, 4096)
		got := false
		var pending []byte
		tooLong := false
		for {
			n, err := r.Read(buf)
			p := buf[:n]
			if n > 0 && !got {
				got = true
				close(w.goByte)
				p = p[1:]
			}
			for len(p) > 0 {
				i := bytes.IndexByte(p, '\n')
				if i < 0 {
					pending = append(pending, p...)
					if len(pending) > maxControlLine {
						pending, tooLong = pending[:0], true
					}
					break
				}
				line := append(pending, p[:i]...)
				pending, p = nil, p[i+1:]
				if tooLong {
					tooLong = false
					line = []byte("(a line too long)")
				}
				select {
				case w.lines <- line:
				case <-w.quit:
					return
				}
			}
			if err != nil {
				close(w.eof)
				return
			}
		}
	}()
	return w
}

// close lets the watcher go when nobody reads its lines any more.
func (w *stdinWatch) close() { w.once.Do(func() { close(w.quit) }) }
