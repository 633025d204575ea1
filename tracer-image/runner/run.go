package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks"
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
	// Stderr receives hooks.Status lines.
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
// A hook that writes bytes (RawHook: pcap, tcpdump's lines) goes through
// the same steps; Run cuts its bytes into records. Limits count records:
// MaxEvents stops after that many; MaxBytes stops before the first record
// that would go beyond it (a pcap's file header is always written), so
// stdout never ends in a partial record. The stats then say which limit
// ended the session (Ended) and the session ends cleanly.
//
// It returns nil after a clean stop. On failure it reports an "error"
// status and returns the error; the hook is detached on every path.
func Run(ctx context.Context, req hooks.Request, cfg Config) (err error) {
	cfg = cfg.withDefaults()
	st := &statusWriter{w: cfg.Stderr}
	defer func() {
		if err != nil {
			st.write(hooks.Status{Kind: hooks.StatusError, Message: err.Error()})
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

	targets, err := resolveAll(cfg, req.Targets, st)
	if err != nil {
		return err
	}

	h, err := attacher.Attach(ctx, Attachment{
		Request:  req,
		Hook:     desc,
		Targets:  targets,
		Fields:   req.Output == hooks.OutputJSON,
		ProcRoot: cfg.ProcRoot,
		Warn:     func(msg string) { st.write(hooks.Status{Kind: hooks.StatusWarning, Message: msg}) },
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
	// A process forked between the scan and the attach is no child of a
	// traced task: look once more now that the hook follows forks.
	var ref *refresher
	if r, ok := h.(Refresher); ok && cfg.RefreshInterval > 0 {
		ref = newRefresher(cfg, r, targets, st)
		ref.once()
	}
	st.write(hooks.Status{Kind: hooks.StatusReady})

	in := watchStdin(cfg.Stdin)
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
	st.write(hooks.Status{Kind: hooks.StatusStarted})
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

	var wg sync.WaitGroup
	if ref != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ref.loop(streamCtx)
		}()
	}

	// A limit stops the session the way the end of stdin does: the hook
	// drains and stops, and what it still writes is dropped.
	out := newOutput(cfg.Stdout, req.Output, cfg.FlushInterval)
	out.setLimits(req.MaxEvents, req.MaxBytes, stop)
	var streamErr error
	if isRaw {
		rw := newRawWriter(out, req.Output)
		streamErr = raw.StreamRaw(streamCtx, rw)
		if dropped, err := rw.close(); err != nil && streamErr == nil {
			streamErr = err
		} else if dropped > 0 {
			st.write(hooks.Status{Kind: hooks.StatusWarning, Message: fmt.Sprintf("the hook's output ended inside a pcap record: its last %d bytes were dropped", dropped)})
		}
	} else {
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
	status := hooks.Status{Kind: hooks.StatusStats, Events: s.Events, Lost: s.Lost, Seconds: d.Seconds()}
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

// resolveAll resolves every target. A target that is not found is a warning
// when others are; the session fails when none is.
func resolveAll(cfg Config, targets []hooks.Target, st *statusWriter) ([]Resolution, error) {
	var (
		found []Resolution
		errs  []error
	)
	for _, t := range targets {
		r, err := Resolve(cfg.ProcRoot, t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		msg := fmt.Sprintf("%s, %s in cgroup %s", plural(len(r.PIDs), "process", "processes"), plural(len(r.TIDs), "thread", "threads"),
			strings.Join(cgroupPaths(r.Cgroups), ", "))
		if m, err := Members(cfg.ProcRoot, cfg.CgroupRoot, r); err == nil {
			msg += "; processes that join later are found in " + m.Source
		}
		st.write(hooks.Status{Kind: hooks.StatusResolved, Target: &r.Target, Method: r.Method, PIDs: r.PIDs, Message: msg})
		found = append(found, r)
	}
	if len(found) == 0 {
		return nil, errors.Join(errs...)
	}
	for _, err := range errs {
		s := hooks.Status{Kind: hooks.StatusWarning, Message: err.Error()}
		if nf := (*NotFoundError)(nil); errors.As(err, &nf) {
			t := nf.Target
			s.Target = &t
		}
		st.write(s)
	}
	return found, nil
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

// refresher hands a PID-scoped hook the threads that joined each target
// since the last look.
type refresher struct {
	cfg     Config
	h       Refresher
	targets []Resolution
	st      *statusWriter
	known   []map[int]bool
	warned  []bool
}

func newRefresher(cfg Config, h Refresher, targets []Resolution, st *statusWriter) *refresher {
	r := &refresher{cfg: cfg, h: h, targets: targets, st: st,
		known: make([]map[int]bool, len(targets)), warned: make([]bool, len(targets))}
	for i, t := range targets {
		r.known[i] = make(map[int]bool, len(t.TIDs))
		for _, tid := range t.TIDs {
			r.known[i][tid] = true
		}
	}
	return r
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
			r.once()
		}
	}
}

func (r *refresher) once() {
	for i, tg := range r.targets {
		m, err := Members(r.cfg.ProcRoot, r.cfg.CgroupRoot, tg)
		if err != nil || len(m.TIDs) == 0 {
			if !r.warned[i] {
				r.warned[i] = true
				r.st.write(hooks.Status{Kind: hooks.StatusWarning, Target: &r.targets[i].Target,
					Message: fmt.Sprintf("container of %s has no processes left: did it exit?", tg.Target)})
			}
			continue
		}
		r.warned[i] = false
		var added []int
		now := make(map[int]bool, len(m.TIDs))
		for _, tid := range m.TIDs {
			now[tid] = true
			if !r.known[i][tid] {
				added = append(added, tid)
			}
		}
		r.known[i] = now
		if len(added) == 0 {
			continue
		}
		if err := r.h.AddPIDs(i, added); err != nil {
			r.st.write(hooks.Status{Kind: hooks.StatusWarning, Target: &r.targets[i].Target,
				Message: fmt.Sprintf("following new processes of %s: %v", tg.Target, err)})
		}
	}
}

// statusWriter writes hooks.Status lines from several goroutines.
type statusWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *statusWriter) write(st hooks.Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A failing stderr means the plugin is gone; nothing is left to tell.
	_ = hooks.WriteStatus(s.w, st)
}

// line writes a line a tool printed, as it is, between status lines.
func (s *statusWriter) line(l string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = io.WriteString(s.w, strings.TrimRight(l, "\n")+"\n")
}

// stdinWatch follows the plugin's end of stdin: goByte closes at the first
// byte, eof when stdin ends (or fails). Bytes after the first are ignored.
type stdinWatch struct {
	goByte chan struct{}
	eof    chan struct{}
}

func watchStdin(r io.Reader) *stdinWatch {
	w := &stdinWatch{goByte: make(chan struct{}), eof: make(chan struct{})}
	go func() {
		buf := make([]byte, 512)
		got := false
		for {
			n, err := r.Read(buf)
			if n > 0 && !got {
				got = true
				close(w.goByte)
			}
			if err != nil {
				close(w.eof)
				return
			}
		}
	}()
	return w
}
