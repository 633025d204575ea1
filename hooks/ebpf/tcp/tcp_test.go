//go:build linux

package tcp

import (
	"testing"

	"github.com/ktrace-dev/kubectl-trace/hooks/ebpf/prog"
)

func TestDecode(t *testing.T) {
	var e bpfTcpEvent
	e.H.Pid = 5
	e.Kind, e.DurationNs = 3, 2_500_000
	e.Tuple.Family, e.Tuple.Sport, e.Tuple.Dport = 2, 40000, 80
	e.Tuple.Saddr = [16]uint8{10, 0, 0, 1}
	e.Tuple.Daddr = [16]uint8{10, 0, 0, 2}
	var rec prog.Record
	_, event, ok := decode(prog.Bytes(&e), &rec)
	if !ok || event != "close" || string(rec.Details(nil)) != "family=ipv4 saddr=10.0.0.1 sport=40000 daddr=10.0.0.2 dport=80 duration_us=2500" {
		t.Errorf("got %q %q %v", event, rec.Details(nil), ok)
	}
	e.Kind = 9 // unknown: skipped
	if _, _, ok := decode(prog.Bytes(&e), &rec); ok {
		t.Error("a record of an unknown kind was decoded")
	}
}

func TestIPString(t *testing.T) {
	v4 := [16]uint8{127, 0, 0, 1}
	v6 := [16]uint8{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	for _, tt := range []struct {
		family uint16
		addr   [16]uint8
		want   string
	}{
		{2, v4, "127.0.0.1"},
		{10, v6, "2001:db8::1"},
		{10, [16]uint8{10: 0xff, 11: 0xff, 12: 10, 13: 0, 14: 0, 15: 7}, "::ffff:10.0.0.7"},
	} {
		if got := ipString(tt.family, tt.addr); got != tt.want {
			t.Errorf("ipString(%d, %v) = %q, want %q", tt.family, tt.addr, got, tt.want)
		}
	}
	if familyName(2) != "ipv4" || familyName(10) != "ipv6" || familyName(1) != "1" {
		t.Error("familyName")
	}
}
