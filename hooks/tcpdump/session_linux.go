//go:build linux

package tcpdump

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// Target is one container whose network namespace is captured.
type Target struct {
	wire.Target
	// PIDs are the container's processes (host PIDs, as in
	// Options.ProcRoot); the first whose namespace opens is used.
	PIDs []int
}

// Options configure a session.
type Options struct {
	// Output is hooks.OutputText, hooks.OutputJSON or hooks.OutputPCAP.
	Output string
	// Args are the hook's parameters as the plugin resolved them; Open
	// checks them again against Hook.
	Args    map[string]string
	Hook    hooks.Descriptor
	Targets []Target
	// ProcRoot is the host's /proc; "" is /proc.
	ProcRoot string
	// Tcpdump is the program; "" finds tcpdump in $PATH.
	Tcpdump string
	// Log receives tcpdump's stderr, one line at a time; nil drops it.
	Log func(line string)
	// Warn reports something the user should know; nil drops it.
	Warn func(msg string)
	// StartTimeout bounds the wait for tcpdump's "listening on"; 0 is 10 s.
	StartTimeout time.Duration
	// StopTimeout is how long tcpdump may take to exit after SIGINT before
	// it is killed; 0 is 5 s.
	StopTimeout time.Duration
	// PerTarget keeps the targets' output apart (StreamRawTargets, for a
	// framed session): text lines carry no prefix naming their target,
	// and pcap may have several targets, a stream each.
	PerTarget bool
}

// EmitFunc receives each packet as an event. ev is reused for the next
// packet; details is tcpdump's line after the timestamp.
type EmitFunc func(ev *wire.Event, details string) error

// Stats are a session's totals, final once Stream or StreamRaw returned.
type Stats struct {
	// Events: packets tcpdump captured (processed), over all targets.
	Events uint64
	// Received: packets that passed the filter in the kernel.
	Received uint64
	// Lost: packets the kernel dropped because tcpdump fell behind.
	Lost uint64
}

// Session is tcpdump running in the targets' network namespaces.
type Session struct {
	opts  Options
	multi bool
	held  held // Log and Warn until a stream starts
	path  string
	argv  []string

	addMu sync.Mutex // one AddTarget at a time
	// mu guards caps and the state of a running stream: AddTarget and
	// RemoveTarget change them while run reads.
	mu       sync.Mutex
	caps     []*capture
	read     func(*capture) error // the running stream's reader; nil before
	done     chan copied
	pending  int  // captures whose output is being read
	stopping bool // every capture was asked to stop
	finished bool // run is past its loop: no capture joins any more

	closeOnce sync.Once
	closeErr  error
}

// capture is one tcpdump process.
type capture struct {
	target wire.Target
	slot   int    // the target's index in the session
	name   string // the target's name in logs and lines when a session has several, else ""
	cmd    *exec.Cmd
	out    *os.File // tcpdump's stdout

	listening  chan struct{} // closed at "listening on"
	stderrDone chan struct{} // closed when stderr has ended
	exited     chan struct{} // closed when the process has been waited for
	waitErr    error         // cmd.Wait's result, set before exited closes
	consumed   bool          // a stream reads out; otherwise Close drains it
	killed     bool          // the stop gave up waiting and killed it
	removed    bool          // RemoveTarget stopped it (guarded by Session.mu)
	ended      bool          // it exited by itself (guarded by Session.mu)
	sigint     sync.Once

	mu     sync.Mutex
	stats  Stats
	counts bool     // tcpdump printed its final counts
	said   []string // what tcpdump said, for errors
}

// Open starts tcpdump in every target's network namespace and waits until
// each is capturing; packets are buffered from then on (in the pipe and
// libpcap's ring) until a stream reads them. On error nothing is left
// running.
func Open(ctx context.Context, opts Options) (*Session, error) {
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 10 * time.Second
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 5 * time.Second
	}
	if opts.Log == nil {
		opts.Log = func(string) {}
	}
	if opts.Warn == nil {
		opts.Warn = func(string) {}
	}
	s := &Session{multi: len(opts.Targets) > 1 && !opts.PerTarget}
	log, warn := opts.Log, opts.Warn
	opts.Log = func(l string) { s.held.do(func() { log(l) }) }
	opts.Warn = func(m string) { s.held.do(func() { warn(m) }) }
	s.opts = opts
	if len(opts.Targets) == 0 {
		return nil, errors.New("no targets")
	}
	if opts.Output == hooks.OutputPCAP && len(opts.Targets) > 1 && !opts.PerTarget {
		return nil, fmt.Errorf("pcap output to stdout takes one target, not %d: two captures cannot share one pcap stream; trace one pod, or use text or json output", len(opts.Targets))
	}
	args, err := opts.Hook.ResolveArgs(opts.Args)
	if err != nil {
		return nil, err
	}
	argv, err := Argv(opts.Output, args)
	if err != nil {
		return nil, err
	}
	prog := opts.Tcpdump
	if prog == "" {
		prog = "tcpdump"
	}
	path, err := exec.LookPath(prog)
	if err != nil {
		return nil, fmt.Errorf("finding tcpdump: %w (the tracer image carries it)", err)
	}
	s.path, s.argv = path, argv
	for i, t := range opts.Targets {
		c, err := s.start(ctx, t, path, argv)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("capturing in the network namespace of %s: %w", t.Target, err)
		}
		c.slot = i
		s.caps = append(s.caps, c)
	}
	return s, nil
}

// AddTarget starts one more tcpdump, in t's network namespace, with index
// slot (a new one), and returns once it captures; a stream that runs reads
// it at once. A session whose output is not kept apart per target
// (Options.PerTarget) takes no pcap target: one pcap stream holds one
// capture.
func (s *Session) AddTarget(slot int, t Target) error {
	s.addMu.Lock()
	defer s.addMu.Unlock()
	if s.opts.Output == hooks.OutputPCAP && !s.opts.PerTarget {
		return errors.New("pcap output to stdout takes one target")
	}
	s.mu.Lock()
	for _, c := range s.caps {
		if c.slot == slot {
			s.mu.Unlock()
			return fmt.Errorf("adding target %s: index %d is taken", t.Target, slot)
		}
	}
	closed := s.stopping || s.finished
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("adding target %s: the session is stopping", t.Target)
	}
	c, err := s.start(context.Background(), t, s.path, s.argv)
	if err != nil {
		return fmt.Errorf("capturing in the network namespace of %s: %w", t.Target, err)
	}
	c.slot = slot
	if !s.opts.PerTarget {
		c.name = t.Target.String()
	}
	s.mu.Lock()
	if s.stopping || s.finished {
		s.mu.Unlock()
		s.kill(c)
		return fmt.Errorf("adding target %s: the session is stopping", t.Target)
	}
	s.caps = append(s.caps, c)
	if s.read != nil {
		s.readLocked(c)
	}
	s.mu.Unlock()
	return nil
}

// RemoveTarget stops the capture of slot: tcpdump is interrupted, what it
// flushes is still read (and dropped by the caller), and its ending is no
// error.
func (s *Session) RemoveTarget(slot int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.caps {
		if c.slot == slot {
			if !c.removed {
				c.removed = true
				c.interrupt()
			}
			return nil
		}
	}
	return fmt.Errorf("removing target %d: no such capture", slot)
}

// readLocked starts reading c for the running stream. The caller holds mu.
func (s *Session) readLocked(c *capture) {
	c.consumed = true
	s.pending++
	read, done := s.read, s.done
	go func() { done <- copied{c: c, err: read(c)} }()
}

// captures returns the captures now.
func (s *Session) captures() []*capture {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*capture(nil), s.caps...)
}

// openNetns opens the network namespace of the first process of t that
// still exists.
func openNetns(procRoot string, t Target) (*os.File, int, error) {
	var errs []error
	for _, pid := range t.PIDs {
		f, err := os.Open(filepath.Join(procRoot, strconv.Itoa(pid), "ns", "net"))
		if err == nil {
			return f, pid, nil
		}
		errs = append(errs, err)
		// A container's processes all answer alike; a node's init may
		// refuse where kthreadd does not (measured: EPERM for PID 1 on a
		// Firecracker VM, even with CAP_SYS_PTRACE).
		if errors.Is(err, os.ErrPermission) && !t.IsNode() {
			break
		}
	}
	if len(errs) == 0 {
		return nil, 0, errors.New("the target has no processes")
	}
	err := errors.Join(errs...)
	if errors.Is(err, os.ErrPermission) {
		return nil, 0, fmt.Errorf("%w: the helper needs CAP_SYS_PTRACE and hostPID to open another process's namespace", err)
	}
	return nil, 0, err
}

func (s *Session) start(ctx context.Context, t Target, path string, argv []string) (*capture, error) {
	ns, pid, err := openNetns(s.opts.ProcRoot, t)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	s.warnHostNetwork(ns, t)

	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	c := &capture{
		target:     t.Target,
		out:        outR,
		listening:  make(chan struct{}),
		stderrDone: make(chan struct{}),
		exited:     make(chan struct{}),
	}
	if s.multi {
		c.name = t.Target.String()
	}
	c.cmd = exec.Command(path, argv...)
	// *os.File streams go to the child as they are: no copying goroutines,
	// and Wait closes nothing this side reads.
	c.cmd.Stdout, c.cmd.Stderr = outW, errW
	c.cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	// tcpdump dies with the thread that started it, which lives until
	// tcpdump exits (startInNetns): never an orphaned capture.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	waited, err := startInNetns(ns, c.cmd)
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("starting %s: %w", path, err)
	}
	go func() {
		c.waitErr = <-waited
		close(c.exited)
	}()
	go c.readStderr(errR, s.opts.Log)

	if same, err := sameNetns(ns, c.cmd.Process.Pid); err != nil || !same {
		if err == nil {
			err = fmt.Errorf("tcpdump (pid %d) did not start in the namespace of pid %d", c.cmd.Process.Pid, pid)
		}
		s.kill(c)
		return nil, err
	}

	timer := time.NewTimer(s.opts.StartTimeout)
	defer timer.Stop()
	select {
	case <-c.listening:
		return c, nil
	case <-c.exited:
		<-c.stderrDone
		outR.Close()
		return nil, fmt.Errorf("tcpdump %s before it started capturing: %s", exitText(c.waitErr), c.saying())
	case <-timer.C:
		s.kill(c)
		return nil, fmt.Errorf("tcpdump did not start capturing within %s: %s", s.opts.StartTimeout, c.saying())
	case <-ctx.Done():
		s.kill(c)
		return nil, ctx.Err()
	}
}

// warnHostNetwork warns when the target shares the node's network
// namespace (hostNetwork: true): then the capture is the node's traffic.
// The node's namespace is init's, or else kthreadd's (PID 2: kernel
// threads are always in the initial namespaces), for where init's is not
// readable (measured: EPERM for PID 1 on a Firecracker VM, even as root).
func (s *Session) warnHostNetwork(ns *os.File, t Target) {
	if t.IsNode() {
		return // the node's traffic is what was asked for
	}
	var target, host unix.Stat_t
	if unix.Fstat(int(ns.Fd()), &target) != nil {
		return
	}
	for _, pid := range []string{"1", "2"} {
		if unix.Stat(filepath.Join(s.opts.ProcRoot, pid, "ns", "net"), &host) == nil {
			if target.Dev == host.Dev && target.Ino == host.Ino {
				s.opts.Warn(fmt.Sprintf("pod %s/%s uses the node's network (hostNetwork): the capture holds all of the node's traffic; narrow it with --arg filter=…", t.Namespace, t.Pod))
			}
			return
		}
	}
}

// kill ends a capture at once and closes its output; for setup failures.
func (s *Session) kill(c *capture) {
	_ = c.cmd.Process.Kill()
	go io.Copy(io.Discard, c.out)
	<-c.exited
	<-c.stderrDone
	c.out.Close()
}

func (c *capture) readStderr(r *os.File, log func(string)) {
	defer close(c.stderrDone)
	defer r.Close()
	_ = readLines(r, func(b []byte) error {
		line := strings.TrimRight(string(b), "\r\n")
		kind, n := classify(line)
		c.mu.Lock()
		switch kind {
		case lineCaptured:
			c.stats.Events, c.counts = n, true
		case lineReceived:
			c.stats.Received = n
		case lineDropped:
			c.stats.Lost = n
		case lineOther:
			if len(c.said) < 20 {
				c.said = append(c.said, strings.TrimPrefix(line, "tcpdump: "))
			}
		}
		c.mu.Unlock()
		switch kind {
		case lineListening:
			close(c.listening)
		case lineNoise:
			return nil
		}
		log(logLine(c.name, line))
		return nil
	})
}

// saying is what tcpdump said besides its counts, for an error message.
func (c *capture) saying() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.said) == 0 {
		return "it printed nothing"
	}
	return strings.Join(c.said, "; ")
}

func exitText(err error) string {
	if err == nil {
		return "exited"
	}
	return "ended (" + err.Error() + ")"
}

// interrupt asks tcpdump to stop: on SIGINT it breaks its loop, flushes
// its output and prints its counts.
func (c *capture) interrupt() {
	c.sigint.Do(func() { _ = c.cmd.Process.Signal(os.Interrupt) })
}

// copied is a finished read of one capture's stdout: err is the first
// error writing it on (the runner's stdout gone, a corrupt stream).
type copied struct {
	c   *capture
	err error
}

// StreamRaw copies tcpdump's output to w until ctx is done, then stops
// tcpdump, copies what it flushes and returns. pcap is copied as it comes;
// text is written a whole line per Write (prefixed with the target's name
// when the session has several), so captures never split each other's
// lines. After a write fails the output is read on and dropped, so tcpdump
// can still exit cleanly, and the error is returned.
func (s *Session) StreamRaw(ctx context.Context, w io.Writer) error {
	return s.StreamRawTargets(ctx, func(int) io.Writer { return w })
}

// StreamRawTargets is StreamRaw with each target's bytes written to
// w(index), as Options.PerTarget keeps them apart; w is called again for a
// target AddTarget adds.
func (s *Session) StreamRawTargets(ctx context.Context, target func(slot int) io.Writer) error {
	if s.opts.Output == hooks.OutputJSON {
		return errors.New("json output is streamed as events, not raw")
	}
	var mu sync.Mutex // one Write at a time, from any capture
	return s.run(ctx, func(c *capture) error {
		w := target(c.slot)
		if s.opts.Output == hooks.OutputPCAP {
			_, err := io.CopyBuffer(w, c.out, make([]byte, 64<<10))
			if err != nil {
				_, _ = io.Copy(io.Discard, c.out)
			}
			return err
		}
		var prefixed []byte
		return readLines(c.out, func(line []byte) error {
			if blank(line) {
				return nil
			}
			if c.name != "" {
				prefixed = append(append(append(prefixed[:0], '['), c.name...), "] "...)
				line = append(prefixed, line...)
				prefixed = line
			}
			mu.Lock()
			defer mu.Unlock()
			_, err := w.Write(line)
			return err
		})
	})
}

// Stream hands every packet to emit as a wire.Event (json output) until
// ctx is done, then stops tcpdump, emits what it flushes and returns. An
// error from emit is returned after tcpdump has stopped.
func (s *Session) Stream(ctx context.Context, emit EmitFunc) error {
	if s.opts.Output != hooks.OutputJSON {
		return fmt.Errorf("%s output is streamed raw, not as events", s.opts.Output)
	}
	var mu sync.Mutex // emit is called from one capture at a time
	return s.run(ctx, func(c *capture) error {
		ev := wire.Event{Event: "packet", Node: c.target.Node, Namespace: c.target.Namespace,
			Pod: c.target.Pod, Container: c.target.Container}
		return readLines(c.out, func(line []byte) error {
			if blank(line) {
				return nil
			}
			t, rest, _ := parseTimed(line)
			details := string(rest)
			mu.Lock()
			defer mu.Unlock()
			ev.Time = t
			ev.Fields = map[string]string{"line": details}
			return emit(&ev, details)
		})
	})
}

// blank says whether a line is empty: tcpdump ends its text output with an
// empty line when interrupted; it is no packet.
func blank(line []byte) bool {
	return len(bytes.TrimSpace(line)) == 0
}

// run reads every capture's stdout with read until it ends: when ctx is
// done (every capture is interrupted), when a read fails (likewise) or
// when tcpdump exits by itself. It returns when every tcpdump has exited
// and its counts are in.
func (s *Session) run(ctx context.Context, read func(*capture) error) error {
	s.held.release()
	s.mu.Lock()
	s.read, s.done = read, make(chan copied)
	for _, c := range s.caps {
		s.readLocked(c)
	}
	s.mu.Unlock()
	var (
		errs []error
		kill <-chan time.Time
	)
	stopAll := func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.stopping {
			return
		}
		s.stopping = true
		for _, c := range s.caps {
			c.interrupt()
		}
		kill = time.After(s.opts.StopTimeout)
	}
	ctxDone := ctx.Done()
	for {
		s.mu.Lock()
		if s.pending == 0 {
			s.finished = true
			s.mu.Unlock()
			break
		}
		s.mu.Unlock()
		select {
		case <-ctxDone:
			ctxDone = nil
			stopAll()
		case <-kill:
			kill = nil
			for _, c := range s.captures() {
				select {
				case <-c.exited:
				default:
					s.opts.Warn(fmt.Sprintf("tcpdump for %s did not stop within %s of SIGINT: killed; its last packets and counts are lost", c.target, s.opts.StopTimeout))
					c.killed = true
					_ = c.cmd.Process.Kill()
				}
			}
		case r := <-s.done:
			s.mu.Lock()
			s.pending--
			stopping, removed := s.stopping, r.c.removed
			s.mu.Unlock()
			if r.err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", r.c.target, r.err))
				stopAll()
				continue
			}
			if stopping || removed {
				continue
			}
			// tcpdump closed its output without being asked: it exited.
			<-r.c.exited
			<-r.c.stderrDone
			err := fmt.Errorf("tcpdump for %s %s: %s", r.c.target, exitText(r.c.waitErr), r.c.saying())
			s.mu.Lock()
			r.c.ended = true
			live := 0
			for _, c := range s.caps {
				if !c.ended && !c.removed {
					live++
				}
			}
			s.mu.Unlock()
			if live == 0 && !s.opts.PerTarget {
				errs = append(errs, err)
			} else {
				s.opts.Warn(err.Error() + "; the other targets are still captured")
			}
		}
	}
	// Every output has ended, so every tcpdump has exited or is exiting.
	s.mu.Lock()
	stopping := s.stopping
	s.mu.Unlock()
	for _, c := range s.captures() {
		select {
		case <-c.exited:
		case <-time.After(s.opts.StopTimeout):
			c.killed = true
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
		<-c.stderrDone
		c.mu.Lock()
		counts := c.counts
		c.mu.Unlock()
		s.mu.Lock()
		quiet := !stopping && !c.removed || c.ended
		s.mu.Unlock()
		if quiet {
			continue // it ended by itself: an error or warning above says so
		}
		if c.waitErr != nil && !c.killed {
			s.opts.Warn(fmt.Sprintf("tcpdump for %s %s when stopped: %s", c.target, exitText(c.waitErr), c.saying()))
		}
		if !counts {
			s.opts.Warn(fmt.Sprintf("tcpdump for %s printed no final counts: the statistics miss its packets", c.target))
		}
	}
	return errors.Join(errs...)
}

// Stats returns the totals of every capture; they are final once a stream
// has returned (or Close, without one).
func (s *Session) Stats() Stats {
	var st Stats
	for _, c := range s.captures() {
		c.mu.Lock()
		st.Events += c.stats.Events
		st.Received += c.stats.Received
		st.Lost += c.stats.Lost
		c.mu.Unlock()
	}
	return st
}

// Close stops every tcpdump still running (SIGINT, then SIGKILL after
// StopTimeout), dropping what it has not streamed, and frees the pipes.
// It is safe to call more than once.
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		s.held.release()
		s.mu.Lock()
		s.finished = true
		caps := append([]*capture(nil), s.caps...)
		s.mu.Unlock()
		for _, c := range caps {
			c.interrupt()
			if !c.consumed {
				go io.Copy(io.Discard, c.out)
			}
		}
		var errs []error
		for _, c := range caps {
			select {
			case <-c.exited:
			case <-time.After(s.opts.StopTimeout):
				_ = c.cmd.Process.Kill()
				<-c.exited
				errs = append(errs, fmt.Errorf("tcpdump for %s did not stop within %s of SIGINT: killed", c.target, s.opts.StopTimeout))
			}
			<-c.stderrDone
		}
		// Only now: a drain may still be reading until tcpdump exits.
		for _, c := range caps {
			c.out.Close()
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// held keeps messages until released, then passes them on in order. The
// plugin attaches to the helper's output when the helper is ready, so what
// tcpdump says while the session is opened ("listening on …") would reach
// only the pod's log: the session holds it until a stream starts.
type held struct {
	mu       sync.Mutex
	released bool
	queue    []func()
}

func (h *held) do(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.released {
		h.queue = append(h.queue, f)
		return
	}
	f()
}

func (h *held) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.released = true
	for _, f := range h.queue {
		f()
	}
	h.queue = nil
}
