//go:build linux

package tcp

import (
	"net/netip"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/ktrace-dev/kubectl-trace/hooks/ebpf/prog"
)

// Def is the tcp hook's program.
var Def = &prog.Def{Name: "tcp", Load: loadBpf, Events: func() prog.Decoder { return decode }}

// Kinds of tcp_event (tcp.c), which are the events' names.
var kinds = map[uint32]string{1: "connect", 2: "accept", 3: "close"}

// decode reads tcp.c's struct tcp_event.
func decode(raw []byte, rec *prog.Record) (prog.Header, string, bool) {
	e, ok := prog.View[bpfTcpEvent](raw)
	if !ok {
		return prog.Header{}, "", false
	}
	kind, ok := kinds[e.Kind]
	if !ok {
		return prog.Header{}, "", false
	}
	h := prog.NewHeader(e.H.Ts, e.H.Pid, e.H.Target, e.H.Cpu, e.H.Comm[:])
	tp := &e.Tuple
	rec.Add("family", familyName(tp.Family))
	rec.Add("saddr", ipString(tp.Family, tp.Saddr))
	rec.Uint("sport", uint64(tp.Sport))
	rec.Add("daddr", ipString(tp.Family, tp.Daddr))
	rec.Uint("dport", uint64(tp.Dport))
	if kind == "close" {
		rec.Uint("duration_us", e.DurationNs/1000)
	}
	return h, kind, true
}

// ipString formats an address of a tcp event: IPv4 in the first 4 bytes
// for AF_INET, 16 bytes for AF_INET6.
func ipString(family uint16, b [16]uint8) string {
	if family == unix.AF_INET6 {
		return netip.AddrFrom16(b).String()
	}
	return netip.AddrFrom4([4]byte(b[:4])).String()
}

func familyName(family uint16) string {
	switch family {
	case unix.AF_INET:
		return "ipv4"
	case unix.AF_INET6:
		return "ipv6"
	}
	return strconv.Itoa(int(family))
}
