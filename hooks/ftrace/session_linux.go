//go:build linux

package ftrace

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/attach"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"golang.org/x/sys/unix"
)

// Runtime runs the hooks of kind ftrace (attach.Runtime). The zero value
// is the helper's.
type Runtime struct {
	// Tracefs is where tracefs is mounted. Empty finds a read-write mount
	// in /proc/self/mounts, or else mounts one of the session's own in a
	// temporary directory, unmounted by Close.
	Tracefs string
	// BufferKB sets the instance's buffer_size_kb (per CPU); 0 keeps the
	// kernel's default.
	BufferKB int
	// Reader chooses how events are read: ReaderRaw (the per-CPU binary
	// trace_pipe_raw, decoded here), ReaderText (trace_pipe, formatted by
	// the kernel), or "" for the hook's choice: raw for sched and
	// syscalls, whose rates the text reader cannot follow, text for the
	// others, whose events it prints in ways the decoder does not copy.
	Reader string
}

// Readers of Runtime.Reader.
const (
	ReaderText = "text"
	ReaderRaw  = "raw"
)

// Open opens a session (see Session) for a.Hook. Targets are scoped by
// their TIDs; a whole node (a target that IsNode, the only one) has no
// PID filter, and a.Self is left out.
func (r Runtime) Open(_ context.Context, a attach.Attachment) (attach.Session, error) {
	return attach.Opened(r.open(a))
}

// config is what a session is opened with.
type config struct {
	Runtime
	sessionID string
	hook      hooks.Descriptor
	args      map[string]string
	// targets are the containers to trace, each with the host TIDs of all
	// its threads. Event.Node, Namespace, Pod and Container come from here.
	targets []attach.Target
	fields  bool
	// procRoot is where the targets' TIDs can be read ("/proc"), for their
	// comm.
	procRoot string
	// allTasks traces a whole node: the instance has no PID filter and
	// every task's events are targets[0]'s, the only target, which has no
	// TIDs. A hook that needs a PID filter to be bounded (funcgraph,
	// hooks.Descriptor.NotNodeWide) is refused.
	allTasks bool
	// exclude, with allTasks, are global thread ids whose events the
	// kernel does not record, nor those of their children and threads to
	// come (set_event_notrace_pid, options/event-fork): the helper's own,
	// so that reading and relaying the trace does not show up in it.
	exclude []int
	warn    func(string)
}

// Session is one trace session in a private tracefs instance
// (instances/kubectl-trace-<session>-<pidns>-<pid>), never the global
// buffer. The kernel buffers events from Open on; Stream reads them.
type Session struct {
	cfg     config
	root    string // tracefs mount
	mounted bool   // root was mounted by Open; Close unmounts it
	dir     string // the instance's path, for messages
	name    string // the instance's name, once made
	// Directory fds of root/instances and of the instance: every file is
	// reached through them, so the session keeps working (and cleans up)
	// even if someone unmounts the tracefs it found.
	instances *os.Root
	inst      *os.Root
	pipe      *os.File // trace_pipe, with the text reader
	raw       *rawReader
	tr        *tracker
	plan      *plan
	tracer    bool   // the function tracer was configured: Close resets it
	clock     string // the clock of the events' Time; "" the kernel's local one
	stale     []string
	// targets is cfg.targets and those AddTarget added: read by the
	// stream, grown by AddTarget (copy on write).
	targets atomic.Pointer[[]attach.Target]
	addMu   sync.Mutex // one AddTarget or RemoveTarget at a time

	streamed  atomic.Bool
	closing   atomic.Bool
	closeOnce sync.Once
	closeErr  error

	mu         sync.Mutex // guards the counters below
	events     uint64
	lost       uint64
	lostLines  uint64
	statsFinal bool

	partial  []byte
	ev       wire.Event
	emit     func(ev *wire.Event, details string) error
	out      outFunc
	fieldMap map[string]string
}

// open makes the session's instance, scopes it to the targets' threads,
// enables the plan's events and turns tracing on. Any error leaves no
// instance behind.
func (r Runtime) open(a attach.Attachment) (_ *Session, err error) {
	cfg, err := r.config(a)
	if err != nil {
		return nil, fmt.Errorf("opening ftrace session: %w", err)
	}
	s := &Session{cfg: cfg, tr: newTracker()}
	targets := slices.Clone(cfg.targets)
	s.targets.Store(&targets)
	s.out = s.record
	s.tr.lookupComm = s.comm
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := s.findTracefs(); err != nil {
		return nil, err
	}
	if s.plan, err = newPlan(cfg.hook, cfg.args, cfg.fields, s.tr, tracefsInfo{root: s.root}); err != nil {
		return nil, fmt.Errorf("opening ftrace session: %w", err)
	}
	if cfg.allTasks {
		if err := s.wholeNode(); err != nil {
			return nil, err
		}
	}
	for _, step := range []func() error{s.makeInstance, s.configure, s.scope, s.enable, s.openReader} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	if err := writeFile(s.inst, "tracing_on", "1", os.O_TRUNC); err != nil {
		return nil, fmt.Errorf("turning tracing on in tracefs instance %q: %w", s.dir, err)
	}
	return s, nil
}

// config checks a and makes the session's configuration of it.
func (r Runtime) config(a attach.Attachment) (config, error) {
	cfg := config{Runtime: r, sessionID: a.Request.SessionID, hook: a.Hook, args: a.Args,
		targets: a.Targets, fields: a.Fields, procRoot: a.ProcRoot, warn: a.Warn}
	if cfg.sessionID == "" {
		return cfg, errors.New("session id is empty")
	}
	if cfg.procRoot == "" {
		cfg.procRoot = "/proc"
	}
	if cfg.warn == nil {
		cfg.warn = func(string) {}
	}
	tids := 0
	for _, t := range a.Targets {
		if t.GlobalErr != nil {
			// The ids are the helper's PID namespace's, which the kernel's
			// filter would compare with global ids: a wrong trace, not an
			// empty one.
			return cfg, fmt.Errorf("%s: the helper sees the node's processes in a PID namespace of their own and could not translate their ids to the kernel's (%w): ftrace hooks filter by those ids; use an eBPF hook, which filters by mount namespace", t.Target, t.GlobalErr)
		}
		tids += len(t.TIDs)
		cfg.allTasks = cfg.allTasks || t.IsNode()
	}
	if cfg.allTasks && len(a.Targets) != 1 {
		return cfg, fmt.Errorf("a whole node is traced as one target, not %d", len(a.Targets))
	}
	if cfg.allTasks {
		cfg.exclude = a.Self
	}
	if tids == 0 && !cfg.allTasks {
		// An empty set_event_pid would trace every task on the node.
		return cfg, errors.New("the targets have no threads to trace")
	}
	return cfg, nil
}

// findTracefs finds the tracefs to use, or mounts one.
func (s *Session) findTracefs() error {
	s.root = s.cfg.Tracefs
	if s.root != "" {
		return nil
	}
	mounts, _ := os.ReadFile("/proc/self/mounts")
	if s.root = findTracefs(string(mounts)); s.root != "" {
		return nil
	}
	var err error
	if s.root, err = mountTracefs(); err != nil {
		return err
	}
	s.mounted = true
	return nil
}

// wholeNode drops the PID filter and leaves the helper's threads out.
func (s *Session) wholeNode() error {
	if len(s.plan.functions) > 0 {
		return fmt.Errorf("opening ftrace session: hook %q cannot trace a whole node: the function tracer needs a PID filter", s.cfg.hook.Name)
	}
	s.plan.filtered = false
	s.tr.allTasks = true
	if len(s.cfg.exclude) == 0 {
		return nil
	}
	excluded := map[int]bool{}
	for _, tid := range s.cfg.exclude {
		excluded[tid] = true
	}
	// Threads the helper starts later are not in exclude: a thread of
	// this process is one /proc/self/task lists (the helper runs in the
	// node's pid namespace, whose ids the events carry).
	s.tr.isExcluded = func(pid int) bool {
		if excluded[pid] {
			return true
		}
		_, err := os.Stat("/proc/self/task/" + strconv.Itoa(pid))
		return err == nil
	}
	return nil
}

// makeInstance removes the stale instances of gone helpers and makes the
// session's.
func (s *Session) makeInstance() error {
	// The owner recorded in the instance's name is this process, in its
	// own pid namespace: /proc, not the targets' procRoot.
	pidns, err := pidNamespace("/proc")
	if err != nil {
		return fmt.Errorf("opening ftrace session: %w", err)
	}
	if s.instances, err = os.OpenRoot(filepath.Join(s.root, "instances")); err != nil {
		return fmt.Errorf("opening tracefs instances: %w", err)
	}
	if s.stale, err = removeStale(s.instances, "/proc", pidns); err != nil {
		s.cfg.warn(fmt.Sprintf("removing stale tracefs instances: %v", err))
	}
	for _, name := range s.stale {
		s.cfg.warn(fmt.Sprintf("removed tracefs instance %q left by a helper that is gone", name))
	}
	name := instanceName(s.cfg.sessionID, pidns, os.Getpid())
	s.dir = filepath.Join(s.root, "instances", name)
	if err := bareErr(s.instances.Mkdir(name, 0o750)); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("creating tracefs instance %q: %w: another session with the same id runs in this process", s.dir, err)
		}
		return fmt.Errorf("creating tracefs instance %q: %w", s.dir, err)
	}
	s.name = name
	if s.inst, err = s.instances.OpenRoot(name); err != nil {
		return fmt.Errorf("opening tracefs instance %q: %w", s.dir, bareErr(err))
	}
	return nil
}

// setting is one file of the instance to write while it is configured.
type setting struct {
	file, value string
	optional    bool // absent on older kernels; the session works without it
}

// configure writes the instance's settings, tracing off.
func (s *Session) configure() error {
	settings := []setting{
		{file: "tracing_on", value: "0"},
		// Wake the reader on any data, not when the buffer is half full.
		{file: "buffer_percent", value: "0", optional: true},
		// Children of traced tasks join the PID filter.
		{file: "options/event-fork", value: "1"},
	}
	if len(s.plan.functions) > 0 {
		settings = append(settings, setting{file: "options/function-fork", value: "1"})
	}
	if s.cfg.BufferKB > 0 {
		settings = append(settings, setting{file: "buffer_size_kb", value: strconv.Itoa(s.cfg.BufferKB)})
	}
	for _, st := range settings {
		if err := writeFile(s.inst, st.file, st.value, os.O_TRUNC); err != nil && !st.optional {
			return fmt.Errorf("setting %s of tracefs instance %q: %w", st.file, s.dir, err)
		}
	}
	return s.setClock()
}

// setClock stamps the events with CLOCK_MONOTONIC ("mono"): ordered
// across CPUs, and related to the wall clock by the runner, where the
// default ("local", the scheduler's per-CPU clock) is neither. It costs
// nothing we could measure: getppid(2) with its sys_enter and sys_exit
// recorded in an instance took a median 930 ns a call with local and 932
// with mono (5 interleaved rounds of 3 M calls on a shared 2-vCPU VM, the
// rounds spreading 790-1270 ns; 281 untraced).
func (s *Session) setClock() error {
	if err := writeFile(s.inst, "trace_clock", "mono", os.O_TRUNC); err != nil {
		s.cfg.warn(fmt.Sprintf("the events' times are the kernel's local trace clock, which cannot be related to the wall clock: setting trace_clock of tracefs instance %q to mono: %v", s.dir, err))
		return nil
	}
	s.clock = wire.ClockMonotonic
	return nil
}

// scope puts the targets' threads in the tracker and in the instance's
// PID filter, or the helper's threads out of a whole node's trace.
func (s *Session) scope() error {
	// The tracker learns the tasks before the kernel does, so no event of
	// theirs can arrive unattributed.
	var tids []int
	for i, t := range s.cfg.targets {
		s.tr.add(i, t.TIDs, s.comm)
		tids = append(tids, t.TIDs...)
	}
	if s.plan.filtered {
		if err := writeFile(s.inst, "set_event_pid", joinInts(tids), os.O_TRUNC); err != nil {
			return fmt.Errorf("setting set_event_pid of tracefs instance %q: %w", s.dir, err)
		}
	}
	if s.cfg.allTasks && len(s.cfg.exclude) > 0 {
		// Linux 5.8+; without it the helper's own events are shown too.
		if err := writeFile(s.inst, "set_event_notrace_pid", joinInts(s.cfg.exclude), os.O_TRUNC); err != nil {
			s.cfg.warn(fmt.Sprintf("the helper's own events are in the trace: setting set_event_notrace_pid of tracefs instance %q: %v", s.dir, err))
		}
	}
	return nil
}

// enable turns on the function tracer, if the plan has one, and the
// plan's events.
func (s *Session) enable() error {
	if err := writeFile(s.inst, "set_event", "", os.O_TRUNC); err != nil {
		return fmt.Errorf("clearing set_event of tracefs instance %q: %w", s.dir, err)
	}
	if len(s.plan.functions) > 0 {
		var tids []int
		for _, t := range s.cfg.targets {
			tids = append(tids, t.TIDs...)
		}
		if err := s.setupTracer(tids); err != nil {
			return err
		}
	}
	for _, e := range s.plan.events {
		if err := writeFile(s.inst, "set_event", e, os.O_APPEND); err != nil {
			return fmt.Errorf("enabling event %q in tracefs instance %q: %w: check that the kernel has it (%s)", e, s.dir, err, filepath.Join(s.root, "available_events"))
		}
	}
	return nil
}

// openReader opens the binary reader where the plan (or Runtime.Reader)
// prefers it and the kernel has it, else trace_pipe.
func (s *Session) openReader() error {
	raw := s.plan.raw
	switch s.cfg.Reader {
	case ReaderRaw:
		raw = true
	case ReaderText:
		raw = false
	}
	if raw {
		var err error
		if s.raw, err = openRaw(s.inst, s.plan.events); err != nil {
			if s.cfg.Reader == ReaderRaw {
				return fmt.Errorf("opening the binary reader of tracefs instance %q: %w", s.dir, err)
			}
			s.cfg.warn(fmt.Sprintf("reading trace_pipe (text, slower) instead of trace_pipe_raw: %v", err))
			s.raw = nil
		}
	}
	if s.raw != nil {
		return nil
	}
	// O_NONBLOCK makes the fd Go's poller's, so a blocked Read returns
	// when Stream sets a deadline or Close runs.
	var err error
	if s.pipe, err = s.inst.OpenFile("trace_pipe", os.O_RDONLY|unix.O_NONBLOCK, 0); err != nil {
		return fmt.Errorf("opening trace_pipe of tracefs instance %q: %w", s.dir, bareErr(err))
	}
	if err := s.pipe.SetReadDeadline(time.Time{}); err != nil {
		return fmt.Errorf("opening trace_pipe of tracefs instance %q: not pollable: %w", s.dir, err)
	}
	return nil
}

// Output says what Stream writes: events, stamped with CLOCK_MONOTONIC
// where the kernel took trace_clock "mono".
func (s *Session) Output() attach.Output { return attach.Output{Clock: s.clock} }

// Instance returns the path of the session's tracefs instance.
func (s *Session) Instance() string { return s.dir }

// Stale returns the instances of gone helpers that Open removed.
func (s *Session) Stale() []string { return s.stale }

// AddThreads adds threads that joined a target after Open (found by the
// runner's membership refresh) to the PID filter (attach.Threads). Threads
// the session already follows are skipped. It is safe to call while Stream
// runs.
func (s *Session) AddThreads(target int, tids []int) error {
	if target < 0 || target >= len(*s.targets.Load()) {
		return fmt.Errorf("adding pids: no target %d", target)
	}
	if s.tr.isRemoved(target) {
		return nil
	}
	return s.filter(s.tr.add(target, tids, s.comm))
}

// filter adds tids to the instance's PID filters.
func (s *Session) filter(added []int) error {
	if len(added) == 0 || !s.plan.filtered {
		return nil
	}
	if err := writeFile(s.inst, "set_event_pid", joinInts(added), os.O_APPEND); err != nil {
		return fmt.Errorf("adding pids to set_event_pid of tracefs instance %q: %w", s.dir, err)
	}
	if s.tracer {
		if err := writeFile(s.inst, "set_ftrace_pid", joinInts(added), os.O_APPEND); err != nil {
			return fmt.Errorf("adding pids to set_ftrace_pid of tracefs instance %q: %w", s.dir, err)
		}
	}
	return nil
}

// AddTarget traces one more target while the session runs: its threads
// join the tracker under index target, which must be the next one (the
// number of targets so far, or more), and the PID filter. Its children follow as
// the initial targets' do. An index skipped (its addition failed in the
// caller) stays unused. It is safe to call while Stream runs.
func (s *Session) AddTarget(target int, t attach.Target) error {
	s.addMu.Lock()
	defer s.addMu.Unlock()
	cur := *s.targets.Load()
	if target < len(cur) {
		return fmt.Errorf("adding target %s: index %d is taken", t.Target, target)
	}
	if t.GlobalErr != nil {
		return fmt.Errorf("translating the ids of %s to the kernel's: %w", t.Target, t.GlobalErr)
	}
	if len(t.TIDs) == 0 {
		return fmt.Errorf("adding target %s: it has no threads to trace", t.Target)
	}
	next := slices.Clone(cur)
	for i := len(cur); i < target; i++ {
		// An index whose addition failed before it got here: unused.
		next = append(next, attach.Target{})
		s.tr.remove(i)
	}
	next = append(next, t)
	// Published before the tracker knows the threads: an event of theirs
	// always finds its target.
	s.targets.Store(&next)
	if err := s.filter(s.tr.add(target, t.TIDs, s.comm)); err != nil {
		s.tr.remove(target)
		return fmt.Errorf("adding target %s: %w", t.Target, err)
	}
	return nil
}

// RemoveTarget stops attributing events to target: its tasks leave the
// tracker, so what the kernel still records of them (they stay in its PID
// filter, which cannot drop a pid alone) is dropped as foreign, and the
// refresh adds none of its threads again.
func (s *Session) RemoveTarget(target int) error {
	s.addMu.Lock()
	defer s.addMu.Unlock()
	if target < 0 || target >= len(*s.targets.Load()) {
		return fmt.Errorf("removing target %d: no such target", target)
	}
	s.tr.remove(target)
	return nil
}

// Stream hands every event about a target task to out, in the kernel's
// order, until ctx is done. It then turns tracing off, drains what the
// kernel still holds, reads the loss counters and returns. An error from
// out stops the stream and is returned. Stream runs once per session.
func (s *Session) Stream(ctx context.Context, out attach.Sink) error {
	if s.streamed.Swap(true) {
		return errors.New("streaming ftrace session: already streamed")
	}
	s.emit = out.Emit
	if s.raw != nil {
		return s.streamRaw(ctx)
	}
	// A deadline in the past wakes a blocked Read at once; it stays set,
	// so a Read that starts later returns at once too.
	stopWake := context.AfterFunc(ctx, func() { s.pipe.SetReadDeadline(time.Unix(1, 0)) })
	defer stopWake()

	buf := make([]byte, 256<<10)
	for {
		n, err := s.pipe.Read(buf)
		if n > 0 {
			if err := s.process(buf[:n]); err != nil {
				return err
			}
		}
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if s.closing.Load() {
			return nil
		}
		if err == io.EOF {
			return fmt.Errorf("reading trace_pipe of tracefs instance %q: tracing was turned off by someone else", s.dir)
		}
		return fmt.Errorf("reading trace_pipe of tracefs instance %q: %w", s.dir, err)
	}
	return s.drain(buf)
}

// drain turns tracing off and reads the instance empty without blocking.
func (s *Session) drain(buf []byte) error {
	if err := writeFile(s.inst, "tracing_on", "0", os.O_TRUNC); err != nil {
		return fmt.Errorf("turning tracing off in tracefs instance %q: %w", s.dir, err)
	}
	if err := s.pipe.SetReadDeadline(time.Time{}); err != nil {
		return fmt.Errorf("draining trace_pipe of tracefs instance %q: %w", s.dir, err)
	}
	rc, err := s.pipe.SyscallConn()
	if err != nil {
		return fmt.Errorf("draining trace_pipe of tracefs instance %q: %w", s.dir, err)
	}
	for {
		var (
			n    int
			rerr error
		)
		// Returning true makes RawConn.Read try once, never wait: the
		// kernel answers EAGAIN when the buffer is empty.
		err := rc.Read(func(fd uintptr) bool {
			n, rerr = unix.Read(int(fd), buf)
			return true
		})
		if err != nil {
			if s.closing.Load() {
				return nil
			}
			return fmt.Errorf("draining trace_pipe of tracefs instance %q: %w", s.dir, err)
		}
		if n > 0 {
			if err := s.process(buf[:n]); err != nil {
				return err
			}
			continue
		}
		if errors.Is(rerr, unix.EINTR) {
			continue
		}
		if rerr != nil && !errors.Is(rerr, unix.EAGAIN) {
			return fmt.Errorf("draining trace_pipe of tracefs instance %q: %w", s.dir, rerr)
		}
		break
	}
	if len(s.partial) > 0 {
		line := string(s.partial)
		s.partial = s.partial[:0]
		if err := s.handle(line); err != nil {
			return err
		}
	}
	if err := s.plan.proc.end(s.out); err != nil {
		return err
	}
	s.readStats()
	return nil
}

// process splits data into lines; a line cut by the end of a read waits in
// s.partial for the rest.
func (s *Session) process(data []byte) error {
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			s.partial = append(s.partial, data...)
			return nil
		}
		var line string
		if len(s.partial) > 0 {
			s.partial = append(s.partial, data[:i]...)
			line = string(s.partial)
			s.partial = s.partial[:0]
		} else {
			line = string(data[:i])
		}
		data = data[i+1:]
		if err := s.handle(line); err != nil {
			return err
		}
	}
	return nil
}

func (s *Session) handle(line string) error {
	if strings.TrimSpace(line) == "" {
		return nil
	}
	l, err := ParseLine(line)
	if err != nil {
		// Not an event: the kernel's note of lost events, or a line of
		// another kind, which is not shown.
		if lost := (*LostError)(nil); errors.As(err, &lost) {
			s.mu.Lock()
			s.lostLines += lost.Count
			s.mu.Unlock()
		}
		return nil
	}
	return s.plan.proc.line(&l, s.out)
}

// record hands one record to the stream's emit function as a wire.Event.
func (s *Session) record(r *record) error {
	t := (*s.targets.Load())[r.task.target].Target
	s.ev = wire.Event{
		Time:      r.time,
		CPU:       r.cpu,
		PID:       r.task.pid,
		Comm:      r.task.comm,
		Event:     r.event,
		Node:      t.Node,
		Namespace: t.Namespace,
		Pod:       t.Pod,
		Container: t.Container,
	}
	if s.cfg.fields {
		if r.fields != nil {
			// The map is reused, as ev is: the sink copies what it keeps.
			if s.fieldMap == nil {
				s.fieldMap = make(map[string]string, len(r.fields))
			}
			clear(s.fieldMap)
			for _, f := range r.fields {
				s.fieldMap[f.key] = f.value
			}
			s.ev.Fields = s.fieldMap
		} else {
			s.ev.Fields = Fields(r.details)
		}
	}
	if err := s.emit(&s.ev, r.details); err != nil {
		return err
	}
	s.mu.Lock()
	s.events++
	s.mu.Unlock()
	return nil
}

// streamRaw is Stream with the binary reader: it takes what the per-CPU
// buffers hold, and sleeps when they are empty, a little longer each time
// they still are (1 to 50 ms). With buffer_percent=0 a blocking read or
// poll would wake at every event; a short sleep lets pages fill instead,
// and the buffers (1.4 MB a CPU by default) hold far more than 50 ms of
// events at the rates this reader follows.
func (s *Session) streamRaw(ctx context.Context) error {
	const minIdle, maxIdle = time.Millisecond, 50 * time.Millisecond
	idle := minIdle
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ctx.Err() == nil {
		n, err := s.raw.pump(s.handleRaw)
		if err != nil {
			if s.closing.Load() {
				return nil
			}
			return err
		}
		if n > 0 {
			idle = minIdle
			continue
		}
		if s.closing.Load() {
			return nil
		}
		timer.Reset(idle)
		select {
		case <-ctx.Done():
		case <-timer.C:
		}
		idle = min(2*idle, maxIdle)
	}
	if err := writeFile(s.inst, "tracing_on", "0", os.O_TRUNC); err != nil {
		return fmt.Errorf("turning tracing off in tracefs instance %q: %w", s.dir, err)
	}
	for {
		n, err := s.raw.pump(s.handleRaw)
		if err != nil {
			if s.closing.Load() {
				return nil
			}
			return err
		}
		if n == 0 {
			break
		}
	}
	if err := s.plan.proc.end(s.out); err != nil {
		return err
	}
	s.mu.Lock()
	s.lostLines = max(s.lostLines, s.raw.lost)
	s.mu.Unlock()
	s.readStats()
	return nil
}

// handleRaw decodes one binary event and hands it to the hook's processor.
func (s *Session) handleRaw(ev rawEvent, cpu int) error {
	var l Line
	if !s.raw.dec.line(&l, ev, cpu) {
		return nil // an event of a format this session did not enable
	}
	return s.plan.proc.line(&l, s.out)
}

// readStats reads the loss counters while the instance still exists.
func (s *Session) readStats() {
	lost, err := cpuStats(s.inst)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && lost > s.lost {
		s.lost = lost
	}
	s.statsFinal = true
}

// Stats returns the session's totals: Events handed to the sink, and
// Lost, the instance's overruns (the oldest events, overwritten because the
// reader fell behind) and dropped events, summed over CPUs. Lost is final
// once Stream or Close has returned. Events about no target task (a
// switch or wakeup whose target side had already left the set, a
// migration of another task) are dropped without being counted as lost.
func (s *Session) Stats() attach.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return attach.Stats{Events: s.events, Lost: max(s.lost, s.lostLines)}
}

// Close turns tracing off, closes the reader, removes the instance and
// unmounts tracefs if Open mounted it. It is safe to call more than once,
// and while Stream runs (Stream then returns nil).
func (s *Session) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Session) close() error {
	var errs []error
	s.closing.Store(true)
	if s.inst != nil {
		// Ignore the error: the instance is removed below in any case.
		writeFile(s.inst, "tracing_on", "0", os.O_TRUNC)
		if s.tracer {
			if err := s.resetTracer(); err != nil {
				errs = append(errs, err)
			}
		}
		s.mu.Lock()
		final := s.statsFinal
		s.mu.Unlock()
		if !final {
			s.readStats()
		}
	}
	if s.pipe != nil {
		if err := s.pipe.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
			errs = append(errs, fmt.Errorf("closing trace_pipe: %w", err))
		}
	}
	if s.raw != nil {
		if err := s.raw.close(); err != nil {
			errs = append(errs, fmt.Errorf("closing trace_pipe_raw: %w", err))
		}
	}
	if s.inst != nil {
		s.inst.Close()
	}
	if s.name != "" {
		// rmdir fails with EBUSY until every file of the instance is
		// closed; a Read woken by Close above may need a moment.
		if err := rmdirRetry(s.instances, s.name, 2*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if s.instances != nil {
		s.instances.Close()
	}
	if s.mounted {
		if err := unmountTracefs(s.root); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// comm returns a thread's comm, or "" when it cannot be read.
func (s *Session) comm(tid int) string {
	b, err := os.ReadFile(filepath.Join(s.cfg.procRoot, strconv.Itoa(tid), "comm"))
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(b), "\n")
}

func joinInts(v []int) string {
	b := make([]byte, 0, len(v)*8)
	for i, n := range v {
		if i > 0 {
			b = append(b, ' ')
		}
		b = strconv.AppendInt(b, int64(n), 10)
	}
	return string(b)
}
