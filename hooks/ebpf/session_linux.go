//go:build linux

package ebpf

import (
	"cmp"
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
	"github.com/ktrace-dev/kubectl-trace/hooks/attach"
	"github.com/ktrace-dev/kubectl-trace/hooks/ebpf/prog"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"golang.org/x/sys/unix"
)

// Defaults of Runtime.
const (
	// DefaultRingBytes is the ring buffer's size.
	DefaultRingBytes = 16 << 20
	// DefaultPollInterval bounds how long an event waits in the ring
	// buffer: the programs wake the reader only once wakeupBytes wait.
	DefaultPollInterval = 50 * time.Millisecond
	// DefaultSpareTargets is how many targets a framed session of a hook
	// that sums per target can add: its per-CPU maps take room for each.
	DefaultSpareTargets = 16
	// maxWakeupBytes is the fill that wakes the reader at once.
	maxWakeupBytes = 256 << 10
)

// Runtime runs the hooks of kind ebpf (attach.Runtime): BPF programs
// scoped in the kernel to the targets' mount namespaces. A process that
// joins a target later (kubectl exec) joins its mount namespace, so a
// session needs no thread refresh. The zero value is the helper's.
type Runtime struct {
	// RingBytes is the ring buffer's size: a power of two, a multiple of
	// the page size; 0 means DefaultRingBytes.
	RingBytes int
	// PollInterval: 0 means DefaultPollInterval.
	PollInterval time.Duration
	// MemcgFilter drops the events of tasks that are in a target's mount
	// namespace but not in its memory cgroup, instead of only counting
	// them (Counters.MemcgMismatch).
	MemcgFilter bool
	// SpareTargets is how many targets AddTarget may add to a framed
	// session of a hook that sums per target (its maps are sized for the
	// targets); 0 means DefaultSpareTargets. The others take up to the
	// mount namespace map's size. A session that is not framed takes no
	// target after Open.
	SpareTargets int
}

// Open loads the hook's programs, scopes them to the targets and attaches
// them (see Session). A whole node (a target that IsNode, the only one)
// matches every task as target 0. Any error leaves nothing loaded or
// attached.
func (r Runtime) Open(_ context.Context, a attach.Attachment) (attach.Session, error) {
	return attach.Opened(r.open(a, nil))
}

// config is what a session is opened with.
type config struct {
	Runtime
	hook     string
	args     map[string]string
	targets  []attach.Target
	fields   bool
	procRoot string
	// allTasks traces every task of the node: the programs match every
	// task as target 0, with no mount namespace lookup and no memory
	// cgroup cross-check. targets then holds exactly one target, which
	// only names the events; AddTarget is refused. Rows of the hooks that
	// sum name no process (pid 0).
	allTasks bool
	spare    int
	warn     func(msg string)
	// memcgDirs returns where a target's memory cgroup directory may be,
	// tried in order (memCgroupDirs).
	memcgDirs func(t attach.Target) []string
}

// Counters are what the kernel side of a session counted, besides the
// events: attach.Stats' Lost is Lost plus Dropped.
type Counters struct {
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
	cfg      config
	def      *prog.Def
	decode   prog.Decoder // ring buffer hooks
	sums     prog.Sums    // hooks that sum in the kernel
	coll     *ebpf.Collection
	links    []link.Link
	rd       *ringbuf.Reader
	memcgOn  bool // the programs compare memory cgroups
	capacity int  // how many targets the sized map has room for; 0 no limit

	// tmu guards the targets: the stream reads them, AddTarget and
	// RemoveTarget change them.
	tmu     sync.RWMutex
	targets []attach.Target
	first   []process // per target: the process aggregated rows name
	removed []bool
	// unemitted counts records read but not emitted (Counters.Dropped).
	unemitted atomic.Uint64
	mntns     map[uint32]uint32 // mount namespace inode -> target, as in the map

	streamed   atomic.Bool
	closing    atomic.Bool
	detachOnce sync.Once
	detachErr  error
	closeOnce  sync.Once
	closeErr   error

	mu       sync.Mutex // guards events, counters
	events   uint64
	counters [nrCounters]uint64

	ev   wire.Event
	rec  prog.Record
	line []byte
	out  attach.Sink
}

type process struct {
	pid  int
	comm string
}

var memlockOnce sync.Once

// open loads, scopes and attaches; memcgDirs, when not nil, replaces
// memCgroupDirs.
func (r Runtime) open(a attach.Attachment, memcgDirs func(attach.Target) []string) (_ *Session, err error) {
	cfg, def, err := r.config(a, memcgDirs)
	if err != nil {
		return nil, fmt.Errorf("opening ebpf hook %q: %w", a.Hook.Name, err)
	}
	s := &Session{cfg: cfg, def: def, targets: slices.Clone(cfg.targets), removed: make([]bool, len(cfg.targets))}
	defer func() {
		if err != nil {
			s.Close()
			err = fmt.Errorf("opening ebpf hook %q: %w", cfg.hook, err)
		}
	}()
	if err := s.readers(); err != nil {
		return nil, err
	}
	memcgs, err := s.scope()
	if err != nil {
		return nil, err
	}
	memlockOnce.Do(func() {
		// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK.
		if err := rlimit.RemoveMemlock(); err != nil {
			cfg.warn(fmt.Sprintf("raising RLIMIT_MEMLOCK: %v", err))
		}
	})
	spec, err := s.spec(memcgs != nil)
	if err != nil {
		return nil, err
	}
	if err := s.load(spec, memcgs); err != nil {
		return nil, err
	}
	return s, s.attachPrograms()
}

// config checks a and makes the session's configuration of it.
func (r Runtime) config(a attach.Attachment, memcgDirs func(attach.Target) []string) (config, *prog.Def, error) {
	cfg := config{Runtime: r, hook: a.Hook.Name, args: a.Args, targets: a.Targets, fields: a.Fields,
		procRoot: a.ProcRoot, warn: a.Warn, memcgDirs: memcgDirs}
	def, ok := program(cfg.hook)
	if !ok {
		return cfg, nil, fmt.Errorf("unknown hook: this tracer has %s", strings.Join(names(), ", "))
	}
	if len(cfg.targets) == 0 {
		return cfg, nil, errors.New("no targets")
	}
	if cfg.procRoot == "" {
		cfg.procRoot = "/proc"
	}
	if cfg.RingBytes == 0 {
		cfg.RingBytes = DefaultRingBytes
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.warn == nil {
		cfg.warn = func(string) {}
	}
	if cfg.memcgDirs == nil {
		cfg.memcgDirs = func(t attach.Target) []string { return memCgroupDirs(cfg.procRoot, t.Cgroups) }
	}
	if a.Request.Framed {
		// Targets join a framed session (wire.Control.Add).
		cfg.spare = cmp.Or(r.SpareTargets, DefaultSpareTargets)
	}
	page := os.Getpagesize()
	if cfg.RingBytes < page || cfg.RingBytes&(cfg.RingBytes-1) != 0 {
		return cfg, nil, fmt.Errorf("ring buffer size %d is not a power of two of at least a page (%d)", cfg.RingBytes, page)
	}
	for _, t := range cfg.targets {
		cfg.allTasks = cfg.allTasks || t.IsNode()
	}
	if cfg.allTasks && len(cfg.targets) != 1 {
		return cfg, nil, fmt.Errorf("tracing all tasks takes exactly one target, which names the node's events; got %d", len(cfg.targets))
	}
	return cfg, def, nil
}

// names returns the names of the hooks this runtime runs.
func names() []string {
	out := make([]string, len(programs))
	for i, d := range programs {
		out[i] = d.Name
	}
	return out
}

// readers makes the session's decoder or reader of sums.
func (s *Session) readers() error {
	if s.def.Events != nil {
		s.decode = s.def.Events()
		return nil
	}
	var err error
	s.sums, err = s.def.Sums(s.cfg.args)
	return err
}

// scope finds the targets' mount namespaces (and, for the cross-check,
// memory cgroups), unless the session traces every task.
func (s *Session) scope() (memcgs map[uint64]uint32, err error) {
	s.mntns = map[uint32]uint32{}
	if s.cfg.allTasks {
		s.first = []process{{}}
		return nil, nil
	}
	if s.mntns, err = s.mountNamespaces(); err != nil {
		return nil, err
	}
	memcgs = s.memoryCgroups()
	s.memcgOn = memcgs != nil
	return memcgs, nil
}

// spec loads the program's spec and sets it up for the session: the
// programs its arguments want, its variables, the sizes of its maps.
func (s *Session) spec(memcg bool) (*ebpf.CollectionSpec, error) {
	spec, err := s.def.Load()
	if err != nil {
		return nil, err
	}
	if s.def.Programs != nil {
		keep, err := s.def.Programs(s.cfg.args)
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
		"memcg_check":  boolU32(memcg),
		"memcg_filter": boolU32(memcg && s.cfg.MemcgFilter),
		"match_all":    boolU32(s.cfg.allTasks),
		"wakeup_bytes": uint32(min(s.cfg.RingBytes/4, maxWakeupBytes)),
	}
	for name, v := range vars {
		if err := spec.Variables[name].Set(v); err != nil {
			return nil, fmt.Errorf("setting %s: %w", name, err)
		}
	}
	if m := spec.Maps["events"]; m != nil {
		m.MaxEntries = uint32(s.cfg.RingBytes)
	}
	if s.def.Sized != "" {
		s.capacity = len(s.cfg.targets) + s.cfg.spare
		spec.Maps[s.def.Sized].MaxEntries = uint32(s.capacity * s.def.Slots)
	}
	return spec, nil
}

// load loads the programs and maps, fills the mount namespace map and
// opens the ring buffer's reader.
func (s *Session) load(spec *ebpf.CollectionSpec, memcgs map[uint64]uint32) error {
	var err error
	s.coll, err = ebpf.NewCollection(spec)
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return fmt.Errorf("loading BPF programs: %w (verifier log: %s)", err, strings.Join(lastLines(ve.Log, 8), " | "))
		}
		return fmt.Errorf("loading BPF programs: %w: check that the kernel has BTF (/sys/kernel/btf/vmlinux) and the helper CAP_BPF and CAP_PERFMON", err)
	}
	memcgOf := map[uint32]uint64{}
	for id, i := range memcgs {
		memcgOf[i] = id
	}
	for ns, i := range s.mntns {
		if err := s.coll.Maps["target_mntns"].Put(ns, targetValue{Target: i, Memcg: memcgOf[i]}); err != nil {
			return fmt.Errorf("adding mount namespace %d: %w", ns, err)
		}
	}
	if s.decode != nil {
		if s.rd, err = ringbuf.NewReader(s.coll.Maps["events"]); err != nil {
			return fmt.Errorf("opening the ring buffer: %w", err)
		}
	}
	return nil
}

// attachPrograms attaches every program, in the order of their names.
func (s *Session) attachPrograms() error {
	names := make([]string, 0, len(s.coll.Programs))
	for name := range s.coll.Programs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		l, err := link.AttachTracing(link.TracingOptions{Program: s.coll.Programs[name]})
		if err != nil {
			return fmt.Errorf("attaching %s: %w", name, err)
		}
		s.links = append(s.links, l)
	}
	return nil
}

// Output says what Stream writes: events, stamped with the kernel's
// CLOCK_MONOTONIC (bpf_ktime_get_ns; the rows of sums, with the time
// they were read).
func (s *Session) Output() attach.Output { return attach.Output{Clock: wire.ClockMonotonic} }

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

// mountNamespaces returns the targets' mount namespaces, each with the
// index of its target, and notes the first process of each target.
func (s *Session) mountNamespaces() (map[uint32]uint32, error) {
	out := map[uint32]uint32{}
	s.first = make([]process, len(s.cfg.targets))
	for i, t := range s.cfg.targets {
		nss, first, err := s.targetNamespaces(t)
		if err != nil {
			return nil, err
		}
		for _, ino := range nss {
			if j, ok := out[ino]; ok && int(j) != i {
				return nil, fmt.Errorf("targets %s and %s share the mount namespace mnt:[%d]: their events could not be told apart", s.cfg.targets[j].Target, t.Target, ino)
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
func (s *Session) targetNamespaces(t attach.Target) ([]uint32, process, error) {
	refuse := map[uint64]string{}
	// PID 1 is the node's init, unless the tracer shares the target's PID
	// namespace (ephemeral mode): there PID 1 is the target's own first
	// process, and its mount namespace is exactly the one to trace.
	if !slices.Contains(t.PIDs, 1) {
		if ino, err := nsInode(filepath.Join(s.cfg.procRoot, "1", "ns", "mnt")); err == nil {
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
		ino, err := nsInode(filepath.Join(s.cfg.procRoot, strconv.Itoa(pid), "ns", "mnt"))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if whose, ok := refuse[ino]; ok {
			return nil, first, fmt.Errorf("target %s: process %d is in %s mount namespace (mnt:[%d]), so every process there would be traced: trace a container with its own mount namespace", t.Target, pid, whose, ino)
		}
		if len(out) == 0 {
			first = process{pid: pid, comm: readComm(s.cfg.procRoot, pid)}
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
// compare them (attach.Targets). A hook that sums per target takes
// Runtime.SpareTargets more at most. It is safe to call while Stream runs.
func (s *Session) AddTarget(target int, t attach.Target) error {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	if s.closing.Load() {
		return fmt.Errorf("adding target %s: the session is closed", t.Target)
	}
	if s.cfg.allTasks {
		return fmt.Errorf("adding target %s: the session traces every task of the node already", t.Target)
	}
	if target < len(s.targets) {
		return fmt.Errorf("adding target %s: index %d is taken", t.Target, target)
	}
	if s.capacity > 0 && target >= s.capacity {
		return fmt.Errorf("adding target %s: hook %q sums per target and has room for %d targets", t.Target, s.cfg.hook, s.capacity)
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
		s.targets = append(s.targets, attach.Target{})
		s.first = append(s.first, process{})
		s.removed = append(s.removed, true)
	}
	s.targets = append(s.targets, t)
	s.first = append(s.first, first)
	s.removed = append(s.removed, false)
	val := targetValue{Target: uint32(target)}
	if s.memcgOn {
		for _, dir := range s.cfg.memcgDirs(t) {
			if ino, err := nsInode(dir); err == nil {
				val.Memcg = ino
				break
			}
		}
		if val.Memcg == 0 {
			what := "counted as outside its memory cgroup"
			if s.cfg.MemcgFilter {
				what = "dropped"
			}
			s.cfg.warn(fmt.Sprintf("memory cgroup of %s not found: its events are %s", t.Target, what))
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
	for i, t := range s.cfg.targets {
		dirs := s.cfg.memcgDirs(t)
		found := false
		for _, dir := range dirs {
			if ino, err := nsInode(dir); err == nil {
				out[ino] = uint32(i)
				found = true
				break
			}
		}
		if !found {
			tried := "no directory known"
			if len(dirs) > 0 {
				tried = "tried " + strings.Join(dirs, ", ")
			}
			s.cfg.warn(fmt.Sprintf("memory cgroup of %s not found (%s): events are scoped by mount namespace only, without the cgroup cross-check", t.Target, tried))
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

// Stream hands the hook's events to out until ctx is done; it then
// detaches the programs, drains the ring buffer or emits the last rows of
// the sums, reads the counters and returns. An error from out stops the
// stream and is returned. Stream runs once per session.
func (s *Session) Stream(ctx context.Context, out attach.Sink) error {
	if s.streamed.Swap(true) {
		return errors.New("streaming ebpf hook: already streamed")
	}
	s.out = out
	var err error
	if s.decode != nil {
		err = s.streamRing(ctx)
	} else {
		err = s.streamSums(ctx)
	}
	if err != nil || s.closing.Load() {
		return err
	}
	s.readCounters()
	if n := s.Counters().MemcgMismatch; n > 0 {
		what := "counted"
		if s.cfg.MemcgFilter {
			what = "dropped"
		}
		s.cfg.warn(fmt.Sprintf("%d events (or task lookups, for syscall-top) came from tasks in a target's mount namespace but outside its memory cgroup (%s): something shares the container's mount namespace", n, what))
	}
	return nil
}

func (s *Session) streamRing(ctx context.Context) error {
	// Flush wakes a blocked read at once when the session stops.
	stopWake := context.AfterFunc(ctx, func() { s.rd.Flush() })
	defer stopWake()
	var rec ringbuf.Record
	for ctx.Err() == nil {
		s.rd.SetDeadline(time.Now().Add(s.cfg.PollInterval))
		err := s.rd.ReadInto(&rec)
		switch {
		case err == nil:
			if err := s.handle(rec.RawSample); err != nil {
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
			if err := s.handle(rec.RawSample); err != nil {
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

func (s *Session) streamSums(ctx context.Context) error {
	var tick <-chan time.Time
	if iv := s.sums.Interval(); iv > 0 {
		t := time.NewTicker(iv)
		defer t.Stop()
		tick = t.C
	}
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick:
			if err := s.flush(); err != nil {
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
	if err := s.flush(); err != nil && !s.closing.Load() {
		return err
	}
	return nil
}

// flush emits the rows summed since the last flush, each stamped with the
// time they were read and naming its target's first process: a row sums
// all of the target's tasks.
func (s *Session) flush() error {
	ts := now()
	return s.sums.Flush(s.coll, s.numTargets(), func(target int, event string, rec *prog.Record) error {
		s.tmu.RLock()
		p := s.first[target]
		s.tmu.RUnlock()
		return s.emit(prog.Header{TS: ts, PID: p.pid, Target: target, Comm: p.comm}, event, *rec)
	})
}

// handle decodes one ring buffer record and emits it.
func (s *Session) handle(raw []byte) error {
	s.rec = s.rec[:0]
	h, event, ok := s.decode(raw, &s.rec)
	if !ok || !s.live(h.Target) {
		// Undecodable, or its target was removed while the record waited
		// in the ring: not delivered, so counted.
		s.unemitted.Add(1)
		return nil
	}
	return s.emit(h, event, s.rec)
}

// live says whether target is one the session still traces.
func (s *Session) live(target int) bool {
	s.tmu.RLock()
	defer s.tmu.RUnlock()
	return target >= 0 && target < len(s.targets) && !s.removed[target]
}

// emit hands rec to the sink as an event of target h.Target.
func (s *Session) emit(h prog.Header, event string, rec prog.Record) error {
	s.tmu.RLock()
	if h.Target < 0 || h.Target >= len(s.targets) || s.removed[h.Target] {
		s.tmu.RUnlock()
		return nil
	}
	t := s.targets[h.Target].Target
	s.tmu.RUnlock()
	s.ev = wire.Event{
		Time:      float64(h.TS) / 1e9,
		CPU:       h.CPU,
		PID:       h.PID,
		Comm:      h.Comm,
		Event:     event,
		Node:      t.Node,
		Namespace: t.Namespace,
		Pod:       t.Pod,
		Container: t.Container,
	}
	if s.cfg.fields {
		s.ev.Fields = rec.Fields()
	}
	s.line = rec.Details(s.line[:0])
	if err := s.out.Emit(&s.ev, string(s.line)); err != nil {
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

// Stats returns the session's totals, final once Stream or Close has
// returned: Lost counts the ring buffer's losses and what was dropped
// (Counters.Dropped: an open whose entry was missing at its exit is an
// event lost as surely as one a full ring had no room for).
func (s *Session) Stats() attach.Stats {
	c := s.Counters()
	s.mu.Lock()
	defer s.mu.Unlock()
	return attach.Stats{Events: s.events, Lost: c.Lost + c.Dropped}
}

// Counters returns what the kernel side counted; final once Stream or
// Close has returned.
func (s *Session) Counters() Counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Counters{
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
