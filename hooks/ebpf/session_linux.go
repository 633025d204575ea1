//go:build linux

package ebpf

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"golang.org/x/sys/unix"
)

// Defaults of Options.
const (
	// DefaultRingBytes is the ring buffer's size.
	DefaultRingBytes = 16 << 20
	// DefaultPollInterval bounds how long an event waits in the ring
	// buffer: the programs wake the reader only once wakeupBytes wait.
	DefaultPollInterval = 50 * time.Millisecond
	// maxWakeupBytes is the fill that wakes the reader at once.
	maxWakeupBytes = 256 << 10
)

// Options configure a Session.
type Options struct {
	// Hook is the hook to run: one of Hooks.
	Hook string
	// Args are the hook's parameters with the defaults filled in
	// (hooks.Descriptor.ResolveArgs).
	Args map[string]string
	// Targets are the containers to trace; an event names its target by
	// its index here.
	Targets []Target
	// Fields fills wire.Event.Fields (JSON output).
	Fields bool
	// ProcRoot is where the targets' pids are seen ("/proc").
	ProcRoot string
	// RingBytes is the ring buffer's size: a power of two, a multiple of
	// the page size; 0 means DefaultRingBytes.
	RingBytes int
	// PollInterval: 0 means DefaultPollInterval.
	PollInterval time.Duration
	// AllTasks traces every task of the node (node-wide tracing): the
	// programs match every task as target 0, with no mount namespace
	// lookup and no memory cgroup cross-check. Targets then holds exactly
	// one target, which only names the events (its PIDs and
	// MemCgroupDirs are not used); AddTarget is refused. Rows of the
	// hooks that sum name no process (pid 0).
	AllTasks bool
	// MemcgFilter drops the events of tasks that are in a target's mount
	// namespace but not in its memory cgroup, instead of only counting
	// them (Stats.MemcgMismatch).
	MemcgFilter bool
	// Warn receives what the user should know while the session goes on;
	// nil drops it.
	Warn func(msg string)
	// SpareTargets is how many targets AddTarget may add to a hook that
	// sums per target (its maps are sized for the targets); the others
	// take up to the mount namespace map's size.
	SpareTargets int
}

// Target is one container to trace.
type Target struct {
	wire.Target
	// PIDs are the container's processes as ProcRoot shows them; their
	// mount namespaces scope the hook.
	PIDs []int
	// MemCgroupDirs are where the container's memory cgroup directory may
	// be, tried in order; the first that exists gives the cross-check's
	// cgroup id. None existing turns the cross-check off, with a warning.
	MemCgroupDirs []string
}

// Stats are a session's totals.
type Stats struct {
	// Events is how many events were handed to the emit function.
	Events uint64
	// Lost is how many events the ring buffer had no room for.
	Lost uint64
	// MemcgMismatch counts the events of tasks in a target's mount
	// namespace but outside its memory cgroup (syscall-top with latency:
	// the times such a task's target was looked up; include/common.h).
	MemcgMismatch uint64
	// Dropped counts in-kernel state that did not fit its map (a socket
	// not remembered, a row of another target, a task storage not
	// allocated), system calls whose number is past syscall-top's table,
	// and ring buffer records read but not emitted: of a target removed
	// meanwhile, or that did not decode.
	Dropped uint64
}

// EmitFunc receives each event. ev is reused for the next event: copy what
// must outlive the call. details is the event's text: key=value pairs.
type EmitFunc func(ev *wire.Event, details string) error

// Indexes of the counters map (include/common.h).
const (
	counterLost = iota
	counterMemcgMismatch
	counterDropped
	nrCounters
)

// Session is one attached hook. The kernel buffers or sums its events from
// Open on; Stream hands them out.
type Session struct {
	opts     Options
	def      *hookDef
	coll     *ebpf.Collection
	links    []link.Link
	rd       *ringbuf.Reader
	memcgOn  bool // the programs compare memory cgroups
	capacity int  // how many targets the sized map has room for; 0 no limit

	// tmu guards the targets: the stream reads them, AddTarget and
	// RemoveTarget change them.
	tmu     sync.RWMutex
	targets []Target
	first   []process // per target: the process aggregated rows name
	removed []bool
	// unemitted counts records read but not emitted (Stats.Dropped).
	unemitted atomic.Uint64
	mntns     map[uint32]uint32 // mount namespace inode -> target, as in the map
	interval  time.Duration
	top       int
	warns     []string

	streamed   atomic.Bool
	closing    atomic.Bool
	detachOnce sync.Once
	detachErr  error
	closeOnce  sync.Once
	closeErr   error

	mu       sync.Mutex // guards events, counters, final
	events   uint64
	counters [nrCounters]uint64
	final    bool

	ev   wire.Event
	rec  record
	line []byte
	// openBuf holds an open record that the kernel cut after its path.
	openBuf openOpenEvent

	sysPrev  map[uint32]sysTotals
	histPrev [][]uint64
}

type process struct {
	pid  int
	comm string
}

// hookDef is how one hook is loaded and read.
type hookDef struct {
	load func() (*ebpf.CollectionSpec, error)
	// decode fills s.ev's task and s.rec from one ring buffer record, and
	// returns its target, time (ns) and event name; ok false skips it.
	decode func(s *Session, raw []byte) (h header, event string, ok bool)
	// flush emits the rows summed since the last flush (aggregating hooks).
	flush func(s *Session, emit EmitFunc) error
	// sized is the map sized targets*slots before load.
	sized string
	slots int
	// programs, when set, names the programs to load for the arguments;
	// the others are left out.
	programs func(args map[string]string) ([]string, error)
}

var defs = map[string]*hookDef{
	HookExec:       {load: loadExec, decode: decodeExec},
	HookOpen:       {load: loadOpen, decode: decodeOpen},
	HookTCP:        {load: loadTcp, decode: decodeTCP},
	HookOOMKill:    {load: loadOomkill, decode: decodeOOM},
	HookSyscallTop: {load: loadSyscalltop, flush: flushSyscalls, sized: "stats", slots: syscallSlots, programs: syscallTopPrograms},
	HookRunqlat:    {load: loadRunqlat, flush: flushRunq, sized: "hist", slots: runqSlots},
}

var memlockOnce sync.Once

// Open loads the hook's programs, scopes them to the targets and attaches
// them. Any error leaves nothing loaded or attached.
func Open(opts Options) (_ *Session, err error) {
	def, ok := defs[opts.Hook]
	if !ok {
		return nil, fmt.Errorf("opening ebpf hook %q: unknown hook: this tracer has %s", opts.Hook, strings.Join(Hooks, ", "))
	}
	if len(opts.Targets) == 0 {
		return nil, fmt.Errorf("opening ebpf hook %q: no targets", opts.Hook)
	}
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.RingBytes == 0 {
		opts.RingBytes = DefaultRingBytes
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.Warn == nil {
		opts.Warn = func(string) {}
	}
	page := os.Getpagesize()
	if opts.RingBytes < page || opts.RingBytes&(opts.RingBytes-1) != 0 {
		return nil, fmt.Errorf("opening ebpf hook %q: ring buffer size %d is not a power of two of at least a page (%d)", opts.Hook, opts.RingBytes, page)
	}
	if opts.AllTasks && len(opts.Targets) != 1 {
		return nil, fmt.Errorf("opening ebpf hook %q: tracing all tasks takes exactly one target, which names the node's events; got %d", opts.Hook, len(opts.Targets))
	}
	s := &Session{opts: opts, def: def, targets: slices.Clone(opts.Targets), removed: make([]bool, len(opts.Targets))}
	if s.interval, s.top, err = parseArgs(opts.Args); err != nil {
		return nil, fmt.Errorf("opening ebpf hook %q: %w", opts.Hook, err)
	}
	defer func() {
		if err != nil {
			s.Close()
			err = fmt.Errorf("opening ebpf hook %q: %w", opts.Hook, err)
		}
	}()

	var (
		mntns  = map[uint32]uint32{}
		memcgs map[uint64]uint32
	)
	if opts.AllTasks {
		s.first = []process{{}}
	} else {
		if mntns, err = s.mountNamespaces(); err != nil {
			return nil, err
		}
		memcgs = s.memoryCgroups()
	}
	s.mntns, s.memcgOn = mntns, memcgs != nil

	memlockOnce.Do(func() {
		// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK.
		if err := rlimit.RemoveMemlock(); err != nil {
			s.warns = append(s.warns, fmt.Sprintf("raising RLIMIT_MEMLOCK: %v", err))
		}
	})
	spec, err := def.load()
	if err != nil {
		return nil, err
	}
	if def.programs != nil {
		keep, err := def.programs(opts.Args)
		if err != nil {
			return nil, err
		}
		for name := range spec.Programs {
			if !slices.Contains(keep, name) {
				delete(spec.Programs, name)
			}
		}
	}
	vars := map[string]uint32{
		"memcg_check":  boolU32(memcgs != nil),
		"memcg_filter": boolU32(memcgs != nil && opts.MemcgFilter),
		"match_all":    boolU32(opts.AllTasks),
		"wakeup_bytes": uint32(min(opts.RingBytes/4, maxWakeupBytes)),
	}
	for name, v := range vars {
		if err := spec.Variables[name].Set(v); err != nil {
			return nil, fmt.Errorf("setting %s: %w", name, err)
		}
	}
	if m := spec.Maps["events"]; m != nil {
		m.MaxEntries = uint32(opts.RingBytes)
	}
	if def.sized != "" {
		s.capacity = len(opts.Targets) + max(opts.SpareTargets, 0)
		spec.Maps[def.sized].MaxEntries = uint32(s.capacity * def.slots)
	}
	s.coll, err = ebpf.NewCollection(spec)
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("loading BPF programs: %w (verifier log: %s)", err, strings.Join(lastLines(ve.Log, 8), " | "))
		}
		return nil, fmt.Errorf("loading BPF programs: %w: check that the kernel has BTF (/sys/kernel/btf/vmlinux) and the helper CAP_BPF and CAP_PERFMON", err)
	}
	memcgOf := map[uint32]uint64{}
	for id, i := range memcgs {
		memcgOf[i] = id
	}
	for ns, i := range mntns {
		if err := s.coll.Maps["target_mntns"].Put(ns, targetValue{Target: i, Memcg: memcgOf[i]}); err != nil {
			return nil, fmt.Errorf("adding mount namespace %d: %w", ns, err)
		}
	}
	if def.decode != nil {
		if s.rd, err = ringbuf.NewReader(s.coll.Maps["events"]); err != nil {
			return nil, fmt.Errorf("opening the ring buffer: %w", err)
		}
	}
	names := make([]string, 0, len(s.coll.Programs))
	for name := range s.coll.Programs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		l, err := link.AttachTracing(link.TracingOptions{Program: s.coll.Programs[name]})
		if err != nil {
			return nil, fmt.Errorf("attaching %s: %w", name, err)
		}
		s.links = append(s.links, l)
	}
	return s, nil
}

func boolU32(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

func lastLines(lines []string, n int) []string {
	if len(lines) > n {
		return lines[len(lines)-n:]
	}
	return lines
}

// parseArgs reads the parameters of the aggregating hooks; the plugin
// checked them (hooks.Descriptor.ResolveArgs).
func parseArgs(args map[string]string) (interval time.Duration, top int, err error) {
	if v, ok := args["interval"]; ok {
		if interval, err = time.ParseDuration(v); err != nil || interval < 0 {
			return 0, 0, fmt.Errorf("interval %q is not a duration >= 0 such as 1s", v)
		}
	}
	if v, ok := args["top"]; ok {
		if top, err = strconv.Atoi(v); err != nil || top < 1 {
			return 0, 0, fmt.Errorf("top %q is not a number >= 1", v)
		}
	}
	return interval, top, nil
}

// mountNamespaces returns the targets' mount namespaces, each with the
// index of its target, and notes the first process of each target.
func (s *Session) mountNamespaces() (map[uint32]uint32, error) {
	out := map[uint32]uint32{}
	s.first = make([]process, len(s.opts.Targets))
	for i, t := range s.opts.Targets {
		nss, first, err := s.targetNamespaces(t)
		if err != nil {
			return nil, err
		}
		for _, ino := range nss {
			if j, ok := out[ino]; ok && int(j) != i {
				return nil, fmt.Errorf("targets %s and %s share the mount namespace mnt:[%d]: their events could not be told apart", s.opts.Targets[j].Target, t.Target, ino)
			}
			out[ino] = uint32(i)
		}
		s.first[i] = first
	}
	return out, nil
}

// targetNamespaces returns the mount namespaces of t's processes and its
// first process. A target in the node's or the tracer's mount namespace
// would make every process there a target: it is refused.
func (s *Session) targetNamespaces(t Target) ([]uint32, process, error) {
	refuse := map[uint64]string{}
	// PID 1 is the node's init, unless the tracer shares the target's PID
	// namespace (ephemeral mode): there PID 1 is the target's own first
	// process, and its mount namespace is exactly the one to trace.
	if !slices.Contains(t.PIDs, 1) {
		if ino, err := nsInode(filepath.Join(s.opts.ProcRoot, "1", "ns", "mnt")); err == nil {
			refuse[ino] = "the node's (pid 1)"
		}
	}
	if ino, err := nsInode("/proc/self/ns/mnt"); err == nil {
		refuse[ino] = "the tracer's own"
	}
	var (
		errs  []error
		out   []uint32
		first process
	)
	for _, pid := range t.PIDs {
		ino, err := nsInode(filepath.Join(s.opts.ProcRoot, strconv.Itoa(pid), "ns", "mnt"))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if whose, ok := refuse[ino]; ok {
			return nil, first, fmt.Errorf("target %s: process %d is in %s mount namespace (mnt:[%d]), so every process there would be traced: trace a container with its own mount namespace", t.Target, pid, whose, ino)
		}
		if len(out) == 0 {
			first = process{pid: pid, comm: readComm(s.opts.ProcRoot, pid)}
		}
		if !slices.Contains(out, uint32(ino)) {
			out = append(out, uint32(ino))
		}
	}
	if len(out) == 0 {
		if len(errs) == 0 {
			return nil, first, fmt.Errorf("target %s has no processes", t.Target)
		}
		return nil, first, fmt.Errorf("target %s: reading the mount namespace of its processes: %w: the helper needs hostPID and CAP_SYS_PTRACE to read /proc/<pid>/ns of other containers", t.Target, errors.Join(errs...))
	}
	return out, first, nil
}

// AddTarget scopes the running hook to one more target, with index
// target, the next one or beyond (an index skipped stays unused): its
// mount namespaces join the map, with its memory cgroup when the programs
// compare them. A hook that sums per target takes Options.SpareTargets
// more at most. It is safe to call while Stream runs.
func (s *Session) AddTarget(target int, t Target) error {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	if s.closing.Load() {
		return fmt.Errorf("adding target %s: the session is closed", t.Target)
	}
	if s.opts.AllTasks {
		return fmt.Errorf("adding target %s: the session traces every task of the node already", t.Target)
	}
	if target < len(s.targets) {
		return fmt.Errorf("adding target %s: index %d is taken", t.Target, target)
	}
	if s.capacity > 0 && target >= s.capacity {
		return fmt.Errorf("adding target %s: hook %q sums per target and has room for %d targets", t.Target, s.opts.Hook, s.capacity)
	}
	nss, first, err := s.targetNamespaces(t)
	if err != nil {
		return fmt.Errorf("adding target: %w", err)
	}
	for _, ino := range nss {
		if j, ok := s.mntns[ino]; ok {
			return fmt.Errorf("adding target %s: it shares the mount namespace mnt:[%d] with %s: their events could not be told apart", t.Target, ino, s.targets[j].Target)
		}
	}
	// The target is known before its namespaces are in the map, so every
	// event of it finds its target.
	for len(s.targets) < target {
		// An index whose addition failed in the caller: unused.
		s.targets = append(s.targets, Target{})
		s.first = append(s.first, process{})
		s.removed = append(s.removed, true)
	}
	s.targets = append(s.targets, t)
	s.first = append(s.first, first)
	s.removed = append(s.removed, false)
	val := targetValue{Target: uint32(target)}
	if s.memcgOn {
		for _, dir := range t.MemCgroupDirs {
			if ino, err := nsInode(dir); err == nil {
				val.Memcg = ino
				break
			}
		}
		if val.Memcg == 0 {
			what := "counted as outside its memory cgroup"
			if s.opts.MemcgFilter {
				what = "dropped"
			}
			s.opts.Warn(fmt.Sprintf("memory cgroup of %s not found: its events are %s", t.Target, what))
		}
	}
	var added []uint32
	undo := func() {
		for _, ino := range added {
			_ = s.coll.Maps["target_mntns"].Delete(ino)
			delete(s.mntns, ino)
		}
		s.removed[target] = true
	}
	for _, ino := range nss {
		if err := s.coll.Maps["target_mntns"].Put(ino, val); err != nil {
			undo()
			return fmt.Errorf("adding target %s: mount namespace %d: %w", t.Target, ino, err)
		}
		s.mntns[ino] = uint32(target)
		added = append(added, ino)
	}
	// After the map: a task that reads the new generation finds it.
	if err := s.bumpTargetGen(); err != nil {
		undo()
		return fmt.Errorf("adding target %s: %w", t.Target, err)
	}
	return nil
}

// targetValue is a value of the map target_mntns: include/common.h's
// struct target_value.
type targetValue struct {
	Target uint32
	_      uint32
	Memcg  uint64 // 0: unknown, every task of the target mismatches
}

// RemoveTarget stops collecting target: its mount namespaces leave the
// map, and what the ring or the sums still hold of it is dropped. It is
// safe to call while Stream runs.
func (s *Session) RemoveTarget(target int) error {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	if target < 0 || target >= len(s.targets) {
		return fmt.Errorf("removing target %d: no such target", target)
	}
	if s.removed[target] {
		return nil
	}
	s.removed[target] = true
	if s.closing.Load() {
		return nil
	}
	var errs []error
	for ino, i := range s.mntns {
		if int(i) == target {
			if err := s.coll.Maps["target_mntns"].Delete(ino); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				errs = append(errs, err)
			}
			delete(s.mntns, ino)
		}
	}
	if err := s.bumpTargetGen(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("removing target %s: %w", s.targets[target].Target, errors.Join(errs...))
	}
	return nil
}

// bumpTargetGen tells the programs that remember a task's target (in task
// storage) that the targets changed, so that they look it up again.
func (s *Session) bumpTargetGen() error {
	v := s.coll.Variables["target_gen"]
	if v == nil {
		return nil
	}
	var gen uint32
	if err := v.Get(&gen); err != nil {
		return fmt.Errorf("reading the target generation: %w", err)
	}
	if err := v.Set(gen + 1); err != nil {
		return fmt.Errorf("bumping the target generation: %w", err)
	}
	return nil
}

// numTargets returns how many targets the session has had.
func (s *Session) numTargets() int {
	s.tmu.RLock()
	defer s.tmu.RUnlock()
	return len(s.targets)
}

func nsInode(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return st.Ino, nil
}

// memoryCgroups returns each target's memory cgroup id with the index of
// its target, or nil (no cross-check) when one of them has none.
func (s *Session) memoryCgroups() map[uint64]uint32 {
	out := map[uint64]uint32{}
	for i, t := range s.opts.Targets {
		found := false
		for _, dir := range t.MemCgroupDirs {
			if ino, err := nsInode(dir); err == nil {
				out[ino] = uint32(i)
				found = true
				break
			}
		}
		if !found {
			tried := "no directory known"
			if len(t.MemCgroupDirs) > 0 {
				tried = "tried " + strings.Join(t.MemCgroupDirs, ", ")
			}
			s.warns = append(s.warns, fmt.Sprintf("memory cgroup of %s not found (%s): events are scoped by mount namespace only, without the cgroup cross-check", t.Target, tried))
			return nil
		}
	}
	return out
}

func readComm(procRoot string, pid int) string {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "comm"))
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(b), "\n")
}

// Warnings returns what went wrong in Open without failing it.
func (s *Session) Warnings() []string { return s.warns }

// Stream hands the hook's events to emit until ctx is done; it then
// detaches the programs, drains the ring buffer or emits the last rows of
// the sums, reads the counters and returns. An error from emit stops the
// stream and is returned. Stream runs once per session.
func (s *Session) Stream(ctx context.Context, emit EmitFunc) error {
	if s.streamed.Swap(true) {
		return errors.New("streaming ebpf hook: already streamed")
	}
	var err error
	if s.def.decode != nil {
		err = s.streamRing(ctx, emit)
	} else {
		err = s.streamSums(ctx, emit)
	}
	if err != nil || s.closing.Load() {
		return err
	}
	s.readCounters()
	if n := s.Stats().MemcgMismatch; n > 0 {
		what := "counted"
		if s.opts.MemcgFilter {
			what = "dropped"
		}
		s.opts.Warn(fmt.Sprintf("%d events (or task lookups, for syscall-top) came from tasks in a target's mount namespace but outside its memory cgroup (%s): something shares the container's mount namespace", n, what))
	}
	return nil
}

func (s *Session) streamRing(ctx context.Context, emit EmitFunc) error {
	// Flush wakes a blocked read at once when the session stops.
	stopWake := context.AfterFunc(ctx, func() { s.rd.Flush() })
	defer stopWake()
	var rec ringbuf.Record
	for ctx.Err() == nil {
		s.rd.SetDeadline(time.Now().Add(s.opts.PollInterval))
		err := s.rd.ReadInto(&rec)
		switch {
		case err == nil:
			if err := s.handle(rec.RawSample, emit); err != nil {
				return err
			}
		case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, ringbuf.ErrFlushed):
			// The programs submit without waking the reader: look again.
		case errors.Is(err, ringbuf.ErrClosed), errors.Is(err, os.ErrClosed), s.closing.Load():
			return nil
		default:
			return fmt.Errorf("reading the ring buffer: %w", err)
		}
	}
	// No program runs once detached: what the ring holds now is all.
	if err := s.detach(); err != nil {
		return err
	}
	// A deadline in the past reads what is left, then says so.
	s.rd.SetDeadline(time.Unix(1, 0))
	for {
		err := s.rd.ReadInto(&rec)
		switch {
		case err == nil:
			if err := s.handle(rec.RawSample, emit); err != nil {
				return err
			}
		case errors.Is(err, ringbuf.ErrFlushed):
		case errors.Is(err, os.ErrDeadlineExceeded):
			return nil
		case errors.Is(err, ringbuf.ErrClosed), errors.Is(err, os.ErrClosed), s.closing.Load():
			return nil
		default:
			return fmt.Errorf("draining the ring buffer: %w", err)
		}
	}
}

func (s *Session) streamSums(ctx context.Context, emit EmitFunc) error {
	var tick <-chan time.Time
	if s.interval > 0 {
		t := time.NewTicker(s.interval)
		defer t.Stop()
		tick = t.C
	}
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick:
			if err := s.def.flush(s, emit); err != nil {
				if s.closing.Load() {
					return nil
				}
				return err
			}
		}
	}
	if err := s.detach(); err != nil {
		return err
	}
	if err := s.def.flush(s, emit); err != nil && !s.closing.Load() {
		return err
	}
	return nil
}

// handle decodes one ring buffer record and emits it.
func (s *Session) handle(raw []byte, emit EmitFunc) error {
	s.rec = s.rec[:0]
	h, event, ok := s.def.decode(s, raw)
	if !ok || !s.live(h.target) {
		// Undecodable, or its target was removed while the record waited
		// in the ring: not delivered, so counted.
		s.unemitted.Add(1)
		return nil
	}
	return s.emit(emit, h, event)
}

// live says whether target is one the session still traces.
func (s *Session) live(target int) bool {
	s.tmu.RLock()
	defer s.tmu.RUnlock()
	return target >= 0 && target < len(s.targets) && !s.removed[target]
}

// header is what every event has: include/common.h's struct hdr, decoded.
type header struct {
	ts     uint64
	pid    int
	target int
	cpu    int
	comm   string
}

// emit hands s.rec to emit as an event of target h.target.
func (s *Session) emit(emit EmitFunc, h header, event string) error {
	s.tmu.RLock()
	if h.target < 0 || h.target >= len(s.targets) || s.removed[h.target] {
		s.tmu.RUnlock()
		return nil
	}
	t := s.targets[h.target].Target
	s.tmu.RUnlock()
	s.ev = wire.Event{
		Time:      float64(h.ts) / 1e9,
		CPU:       h.cpu,
		PID:       h.pid,
		Comm:      h.comm,
		Event:     event,
		Node:      t.Node,
		Namespace: t.Namespace,
		Pod:       t.Pod,
		Container: t.Container,
	}
	if s.opts.Fields {
		s.ev.Fields = s.rec.fields()
	}
	s.line = s.rec.details(s.line[:0])
	if err := emit(&s.ev, string(s.line)); err != nil {
		return err
	}
	s.mu.Lock()
	s.events++
	s.mu.Unlock()
	return nil
}

// now is the kernel's CLOCK_MONOTONIC, the clock of the events, in ns.
func now() uint64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}

// rowHeader names the target's first process for a row of sums.
func (s *Session) rowHeader(target int, ts uint64) header {
	s.tmu.RLock()
	p := s.first[target]
	s.tmu.RUnlock()
	return header{ts: ts, pid: p.pid, target: target, comm: p.comm}
}

// detach closes every link: no program runs after it.
func (s *Session) detach() error {
	s.detachOnce.Do(func() {
		var errs []error
		for _, l := range s.links {
			if err := l.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			s.detachErr = fmt.Errorf("detaching BPF programs: %w", errors.Join(errs...))
		}
	})
	return s.detachErr
}

// readCounters sums the per-CPU counters; they only grow.
func (s *Session) readCounters() {
	if s.coll == nil || s.coll.Maps["counters"] == nil {
		return
	}
	var got [nrCounters]uint64
	for i := range got {
		var vals []uint64
		if err := s.coll.Maps["counters"].Lookup(uint32(i), &vals); err != nil {
			return
		}
		for _, v := range vals {
			got[i] += v
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, v := range got {
		s.counters[i] = max(s.counters[i], v)
	}
}

// Stats returns the session's totals; they are final once Stream or Close
// has returned.
func (s *Session) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{
		Events:        s.events,
		Lost:          s.counters[counterLost],
		MemcgMismatch: s.counters[counterMemcgMismatch],
		Dropped:       s.counters[counterDropped] + s.unemitted.Load(),
	}
}

// Close detaches the programs and frees every program and map. It is safe
// to call more than once, and while Stream runs (Stream then returns nil).
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		var errs []error
		if err := s.detach(); err != nil {
			errs = append(errs, err)
		}
		if s.rd != nil {
			if err := s.rd.Close(); err != nil {
				errs = append(errs, fmt.Errorf("closing the ring buffer reader: %w", err))
			}
		}
		s.readCounters()
		if s.coll != nil {
			s.coll.Close()
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}
