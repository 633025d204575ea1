//go:build linux

package tcpdump

import (
	"bytes"
	"cmp"
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
	"github.com/ktrace-dev/kubectl-trace/hooks/attach"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"github.com/ktrace-dev/kubectl-trace/tracer-image/pidns"
)

// Runtime runs the hooks of kind tcpdump (attach.Runtime): tcpdump in
// each target's network namespace. The zero value is the helper's.
type Runtime struct {
	// Tcpdump is the program; "" finds tcpdump in $PATH.
	Tcpdump string
	// StartTimeout bounds the wait for tcpdump's "listening on"; 0 is 10 s.
	StartTimeout time.Duration
	// StopTimeout is how long tcpdump may take to exit after SIGINT before
	// it is killed; 0 is 5 s.
	StopTimeout time.Duration
}

// Open starts tcpdump in every target's network namespace and returns
// once each is capturing (see Session). Text and pcap output is raw
// (tcpdump's bytes as they are), json output events.
func (r Runtime) Open(ctx context.Context, a attach.Attachment) (attach.Session, error) {
	return attach.Opened(r.open(ctx, a))
}

// config is what a session is opened with.
type config struct {
	Runtime
	// output is hooks.OutputText, hooks.OutputJSON or hooks.OutputPCAP.
	output  string
	targets []attach.Target
	// procRoot is the host's /proc; "" is /proc.
	procRoot string
	// log receives tcpdump's stderr, one line at a time.
	log func(line string)
	// warn reports something the user should know.
	warn func(msg string)
	// perTarget keeps the targets' output apart (a framed session): text
	// lines carry no prefix naming their target, and pcap may have several
	// targets, a stream each.
	perTarget bool
	// text fills Event.Text with the line text output shows.
	text bool
}

// stats are one capture's counts, from tcpdump's last words.
type stats struct {
	captured, dropped uint64
}

// Session is tcpdump running in the targets' network namespaces.
type Session struct {
	cfg   config
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
	stats  stats
	counts bool     // tcpdump printed its final counts
	said   []string // what tcpdump said, for errors
}

// open starts the captures. On error nothing is left running.
func (r Runtime) open(ctx context.Context, a attach.Attachment) (*Session, error) {
	cfg := config{Runtime: r, output: a.Request.Output, targets: a.Targets, procRoot: a.ProcRoot,
		log: a.Log, warn: a.Warn, perTarget: a.Request.Framed, text: a.Request.Text}
	if cfg.procRoot == "" {
		cfg.procRoot = "/proc"
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 10 * time.Second
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 5 * time.Second
	}
	s := &Session{multi: len(cfg.targets) > 1 && !cfg.perTarget}
	log, warn := cfg.log, cfg.warn
	if log == nil {
		log = func(string) {}
	}
	if warn == nil {
		warn = func(string) {}
	}
	cfg.log = func(l string) { s.held.do(func() { log(l) }) }
	cfg.warn = func(m string) { s.held.do(func() { warn(m) }) }
	s.cfg = cfg
	if len(cfg.targets) == 0 {
		return nil, errors.New("no targets")
	}
	if cfg.output == hooks.OutputPCAP && len(cfg.targets) > 1 && !cfg.perTarget {
		return nil, fmt.Errorf("pcap output to stdout takes one target, not %d: two captures cannot share one pcap stream; trace one pod, or use text or json output", len(cfg.targets))
	}
	argv, err := Argv(cfg.output, a.Args)
	if err != nil {
		return nil, err
	}
	path, err := exec.LookPath(cmp.Or(cfg.Tcpdump, "tcpdump"))
	if err != nil {
		return nil, fmt.Errorf("finding tcpdump: %w (the tracer image carries it)", err)
	}
	s.path, s.argv = path, argv
	for i, t := range cfg.targets {
		c, err := s.start(ctx, t)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("capturing in the network namespace of %s: %w", t.Target, err)
		}
		c.slot = i
		s.caps = append(s.caps, c)
	}
	return s, nil
}

// Output says what Stream writes: tcpdump's bytes for text and pcap,
// events stamped with the packets' CLOCK_REALTIME for json.
func (s *Session) Output() attach.Output {
	if s.cfg.output == hooks.OutputJSON {
		return attach.Output{Clock: wire.ClockRealtime}
	}
	return attach.Output{Raw: true}
}

// AddTarget starts one more tcpdump, in t's network namespace, with index
// slot (a new one), and returns once it captures (attach.Targets); a
// stream that runs reads it at once. A session whose output is not kept
// apart per target (not framed) takes no pcap target: one pcap stream
// holds one capture.
func (s *Session) AddTarget(slot int, t attach.Target) error {
	s.addMu.Lock()
	defer s.addMu.Unlock()
	if s.cfg.output == hooks.OutputPCAP && !s.cfg.perTarget {
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
	c, err := s.start(context.Background(), t)
	if err != nil {
		return fmt.Errorf("capturing in the network namespace of %s: %w", t.Target, err)
	}
	c.slot = slot
	if !s.cfg.perTarget {
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
func openNetns(procRoot string, t attach.Target) (*os.File, int, error) {
	var errs []error
	for _, pid := range netnsPIDs(procRoot, t) {
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

// netnsPIDs are the processes whose network namespace is t's: its own,
// or for a whole node the node's own namespace, that of its init (or of
// kthreadd, PID 2, where init's is not readable: kernel threads are always
// in the initial namespaces). PID 2 is kthreadd only in the initial PID
// namespace; on a node in one of its own it can be any process.
func netnsPIDs(procRoot string, t attach.Target) []int {
	if !t.IsNode() {
		return t.PIDs
	}
	pids := []int{1}
	if initial, err := pidns.IsInitial(procRoot); err == nil && initial {
		pids = append(pids, 2)
	}
	return pids
}

// start starts tcpdump in t's network namespace and waits until it
// captures.
func (s *Session) start(ctx context.Context, t attach.Target) (*capture, error) {
	ns, pid, err := openNetns(s.cfg.procRoot, t)
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
	c.cmd = exec.Command(s.path, s.argv...)
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
		return nil, fmt.Errorf("starting %s: %w", s.path, err)
	}
	go func() {
		c.waitErr = <-waited
		close(c.exited)
	}()
	go c.readStderr(errR, s.cfg.log)

	if same, err := sameNetns(ns, c.cmd.Process.Pid); err != nil || !same {
		if err == nil {
			err = fmt.Errorf("tcpdump (pid %d) did not start in the namespace of pid %d", c.cmd.Process.Pid, pid)
		}
		s.kill(c)
		return nil, err
	}

	timer := time.NewTimer(s.cfg.StartTimeout)
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
		return nil, fmt.Errorf("tcpdump did not start capturing within %s: %s", s.cfg.StartTimeout, c.saying())
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
func (s *Session) warnHostNetwork(ns *os.File, t attach.Target) {
	if t.IsNode() {
		return // the node's traffic is what was asked for
	}
	var target, host unix.Stat_t
	if unix.Fstat(int(ns.Fd()), &target) != nil {
		return
	}
	for _, pid := range []string{"1", "2"} {
		if unix.Stat(filepath.Join(s.cfg.procRoot, pid, "ns", "net"), &host) == nil {
			if target.Dev == host.Dev && target.Ino == host.Ino {
				s.cfg.warn(fmt.Sprintf("pod %s/%s uses the node's network (hostNetwork): the capture holds all of the node's traffic; narrow it with --arg filter=…", t.Namespace, t.Pod))
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
			c.stats.captured, c.counts = n, true
		case lineDropped:
			c.stats.dropped = n
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

// Stream hands tcpdump's output to out until ctx is done, then stops
// tcpdump, hands on what it flushes and returns.
//
// Text and pcap go to out.Raw(slot) of each capture's slot: pcap is
// copied as it comes; text is written a whole line per Write (prefixed
// with the target's name when a session that is not framed has several),
// so captures never split each other's lines. After a write fails the
// output is read on and dropped, so tcpdump can still exit cleanly, and
// the error is returned.
//
// JSON output is one event per packet, Event "packet", with Time the
// packet's timestamp (CLOCK_REALTIME) and Fields["line"] the rest of
// tcpdump's line; PID, Comm and CPU are zero (a packet belongs to no
// task). An error from out.Emit is returned after tcpdump has stopped.
func (s *Session) Stream(ctx context.Context, out attach.Sink) error {
	var mu sync.Mutex // one Write or Emit at a time, from any capture
	if s.cfg.output == hooks.OutputJSON {
		return s.run(ctx, func(c *capture) error { return s.events(c, out, &mu) })
	}
	return s.run(ctx, func(c *capture) error { return s.bytes(c, out.Raw(c.slot), &mu) })
}

// bytes copies c's output to w.
func (s *Session) bytes(c *capture, w io.Writer, mu *sync.Mutex) error {
	if s.cfg.output == hooks.OutputPCAP {
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
}

// events hands c's packets to out as events.
func (s *Session) events(c *capture, out attach.Sink, mu *sync.Mutex) error {
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
		if s.cfg.text {
			ev.Text = textLine(line, time.Local)
		}
		return out.Emit(&ev, details)
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
	ctxDone := ctx.Done()
	for s.reading() {
		select {
		case <-ctxDone:
			ctxDone = nil
			kill = s.stopAll(kill)
		case <-kill:
			kill = nil
			s.killStuck()
		case r := <-s.done:
			err, stop := s.copiedOut(r)
			if err != nil {
				errs = append(errs, err)
			}
			if stop {
				kill = s.stopAll(kill)
			}
		}
	}
	s.reap()
	return errors.Join(errs...)
}

// reading says whether a capture's output is still being read; when none
// is, no capture joins any more.
func (s *Session) reading() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == 0 {
		s.finished = true
		return false
	}
	return true
}

// stopAll interrupts every capture, once, and returns when to kill the
// ones that have not stopped by then.
func (s *Session) stopAll(kill <-chan time.Time) <-chan time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return kill
	}
	s.stopping = true
	for _, c := range s.caps {
		c.interrupt()
	}
	return time.After(s.cfg.StopTimeout)
}

// killStuck kills the captures that did not stop within StopTimeout of
// SIGINT.
func (s *Session) killStuck() {
	for _, c := range s.captures() {
		select {
		case <-c.exited:
		default:
			s.cfg.warn(fmt.Sprintf("tcpdump for %s did not stop within %s of SIGINT: killed; its last packets and counts are lost", c.target, s.cfg.StopTimeout))
			c.killed = true
			_ = c.cmd.Process.Kill()
		}
	}
}

// copiedOut takes the end of one capture's output. It returns the error
// that ends the session: the output could not be written on (then stop
// says to stop the other captures), or the only capture of a session
// that is not framed exited by itself.
func (s *Session) copiedOut(r copied) (err error, stop bool) {
	s.mu.Lock()
	s.pending--
	stopping, removed := s.stopping, r.c.removed
	s.mu.Unlock()
	if r.err != nil {
		return fmt.Errorf("%s: %w", r.c.target, r.err), true
	}
	if stopping || removed {
		return nil, false
	}
	// tcpdump closed its output without being asked: it exited.
	<-r.c.exited
	<-r.c.stderrDone
	err = fmt.Errorf("tcpdump for %s %s: %s", r.c.target, exitText(r.c.waitErr), r.c.saying())
	s.mu.Lock()
	r.c.ended = true
	live := 0
	for _, c := range s.caps {
		if !c.ended && !c.removed {
			live++
		}
	}
	s.mu.Unlock()
	if live == 0 && !s.cfg.perTarget {
		return err, false
	}
	s.cfg.warn(err.Error() + "; the other targets are still captured")
	return nil, false
}

// reap waits for every tcpdump, whose output has ended, to exit, and
// warns of those that stopped badly or said no counts.
func (s *Session) reap() {
	s.mu.Lock()
	stopping := s.stopping
	s.mu.Unlock()
	for _, c := range s.captures() {
		select {
		case <-c.exited:
		case <-time.After(s.cfg.StopTimeout):
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
			s.cfg.warn(fmt.Sprintf("tcpdump for %s %s when stopped: %s", c.target, exitText(c.waitErr), c.saying()))
		}
		if !counts {
			s.cfg.warn(fmt.Sprintf("tcpdump for %s printed no final counts: the statistics miss its packets", c.target))
		}
	}
}

// Stats returns the totals of every capture: Events, the packets tcpdump
// captured (processed), and Lost, those the kernel dropped because tcpdump
// fell behind. They are final once Stream has returned (or Close, without
// one).
func (s *Session) Stats() attach.Stats {
	var st attach.Stats
	for _, c := range s.captures() {
		c.mu.Lock()
		st.Events += c.stats.captured
		st.Lost += c.stats.dropped
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
			case <-time.After(s.cfg.StopTimeout):
				_ = c.cmd.Process.Kill()
				<-c.exited
				errs = append(errs, fmt.Errorf("tcpdump for %s did not stop within %s of SIGINT: killed", c.target, s.cfg.StopTimeout))
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
