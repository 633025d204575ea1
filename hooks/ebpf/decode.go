//go:build linux

package ebpf

import (
	"strconv"
	"unsafe"
)

// view returns raw as a *T when it is long enough to hold one. The ring
// buffer's records are 8-byte aligned and the generated types have the
// host's layout (bpfel on amd64 and arm64).
func view[T any](raw []byte) (*T, bool) {
	var zero T
	if len(raw) < int(unsafe.Sizeof(zero)) {
		return nil, false
	}
	return (*T)(unsafe.Pointer(&raw[0])), true
}

// viewCut is view for records that the kernel cuts after a variable-length
// last field (open.c's output): a record shorter than T but at least least
// bytes long is copied into buf, zeroed beyond it.
func viewCut[T any](raw []byte, least uintptr, buf *T) (*T, bool) {
	if e, ok := view[T](raw); ok {
		return e, true
	}
	if len(raw) < int(least) {
		return nil, false
	}
	var zero T
	*buf = zero
	copy(unsafe.Slice((*byte)(unsafe.Pointer(buf)), unsafe.Sizeof(zero)), raw)
	return buf, true
}

func decodeHeader(ts uint64, pid, target, cpu uint32, comm []int8) header {
	return header{ts: ts, pid: int(pid), target: int(target), cpu: int(cpu), comm: cstring8(comm)}
}

// decodeExec: exec's struct exec_event.
func decodeExec(s *Session, raw []byte) (header, string, bool) {
	e, ok := view[execExecEvent](raw)
	if !ok {
		return header{}, "", false
	}
	h := decodeHeader(e.H.Ts, e.H.Pid, e.H.Target, e.H.Cpu, e.H.Comm[:])
	n := min(int(e.ArgsLen), len(e.Args))
	args := unsafe.Slice((*byte)(unsafe.Pointer(&e.Args[0])), n)
	s.rec.int("pid", int64(e.H.Pid))
	s.rec.int("ppid", int64(e.Ppid))
	s.rec.int("uid", int64(e.Uid))
	s.rec.add("filename", cstring8(e.Filename[:]))
	s.rec.add("argv", argv(args, e.Truncated != 0))
	return h, HookExec, true
}

// decodeOpen: open's struct open_event.
func decodeOpen(s *Session, raw []byte) (header, string, bool) {
	e, ok := viewCut[openOpenEvent](raw, unsafe.Offsetof(openOpenEvent{}.Path), &s.openBuf)
	if !ok {
		return header{}, "", false
	}
	h := decodeHeader(e.H.Ts, e.H.Pid, e.H.Target, e.H.Cpu, e.H.Comm[:])
	s.rec.add("path", cstring8(e.Path[:]))
	s.rec.add("flags", openFlags(e.Flags))
	s.rec.int("result", e.Ret)
	if e.Ret < 0 {
		s.rec.add("error", errnoName(e.Ret))
	}
	return h, HookOpen, true
}

// Kinds of tcp_event (tcp.c).
var tcpKinds = map[uint32]string{1: "connect", 2: "accept", 3: "close"}

// decodeTCP: tcp's struct tcp_event.
func decodeTCP(s *Session, raw []byte) (header, string, bool) {
	e, ok := view[tcpTcpEvent](raw)
	if !ok {
		return header{}, "", false
	}
	kind, ok := tcpKinds[e.Kind]
	if !ok {
		return header{}, "", false
	}
	h := decodeHeader(e.H.Ts, e.H.Pid, e.H.Target, e.H.Cpu, e.H.Comm[:])
	tp := &e.Tuple
	s.rec.add("family", familyName(tp.Family))
	s.rec.add("saddr", ipString(tp.Family, tp.Saddr))
	s.rec.uint("sport", uint64(tp.Sport))
	s.rec.add("daddr", ipString(tp.Family, tp.Daddr))
	s.rec.uint("dport", uint64(tp.Dport))
	if kind == "close" {
		s.rec.uint("duration_us", e.DurationNs/1000)
	}
	return h, kind, true
}

// decodeOOM: oomkill's struct oom_event.
func decodeOOM(s *Session, raw []byte) (header, string, bool) {
	e, ok := view[oomkillOomEvent](raw)
	if !ok {
		return header{}, "", false
	}
	h := decodeHeader(e.H.Ts, e.H.Pid, e.H.Target, e.H.Cpu, e.H.Comm[:])
	s.rec.int("victim_pid", int64(e.VictimPid))
	s.rec.add("victim_comm", cstring8(e.VictimComm[:]))
	s.rec.int("victim_uid", int64(e.VictimUid))
	s.rec.int("trigger_pid", int64(e.TriggerPid))
	s.rec.add("trigger_comm", cstring8(e.TriggerComm[:]))
	s.rec.int("pages", e.Pages)
	return h, HookOOMKill, true
}

// syscallName names a syscall number of this machine's architecture.
func syscallName(arch string, nr int) string {
	if n, ok := syscallNames[arch][nr]; ok {
		return n
	}
	return "syscall_" + strconv.Itoa(nr)
}
