package wire

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// stdJSON is the reference: what the helper wrote with encoding/json.
func stdJSON(t testing.TB, ev *Event) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	return b.Bytes()
}

// oddStrings are the strings most likely to differ from encoding/json:
// every escape, HTML characters (not escaped), invalid and edge UTF-8.
var oddStrings = []string{
	"", "sh", "<idle>", "a&b>c", `quote"back\slash`, "\x00\x01\x1f\x7f", "\b\f\n\r\t",
	"kworker/0:1H-kblockd", "\u2028\u2029", "héllo wörld ☃ 😀", "\xff\xfe", "ab\xc3", "\xed\xa0\x80",
	"\xf4\x90\x80\x80", "/dev/null", "pa=th with=equals", string([]byte{0xe2, 0x80, 0xa8, 'x'}), "\u00e9\u0301",
}

var oddTimes = []float64{0, 1, 12345.678901, 1e-7, 1.5e-6, 9.99e-7, 1e21, 1e20, 123456789012.123456, -3.25, math.SmallestNonzeroFloat64, math.MaxFloat64, 0.1 + 0.2}

func TestEventJSONMatchesEncodingJSON(t *testing.T) {
	var enc EventEncoder
	var events []Event
	for i, s := range oddStrings {
		events = append(events, Event{
			Time: oddTimes[i%len(oddTimes)], CPU: i, PID: -i * 1000, Comm: s, Event: s,
			Node: s, Namespace: "ns-" + s, Pod: s + "pod", Container: s,
		})
		events = append(events, Event{Time: oddTimes[(i+3)%len(oddTimes)], Comm: "c", Event: "sys_exit",
			Fields: map[string]string{s: s, "z" + s: "v", "a": s, "": ""}})
		events = append(events, Event{Time: oddTimes[i%len(oddTimes)], Comm: s, Event: "e", Text: s + " " + s})
	}
	for _, tm := range oddTimes {
		events = append(events, Event{Time: tm, CPU: math.MaxInt32, PID: math.MinInt32}, Event{Time: -tm})
	}
	events = append(events,
		Event{Fields: map[string]string{}}, // omitted, as omitempty does
		Event{Fields: map[string]string{"name": "getppid", "id": "110", "ret": "1", "b": "2", "B": "3", "é": "4", "a b": "5",
			"k1": "", "k10": "", "k2": "", "k11": "", "k3": "", "k12": "", "k4": ""}},
		Event{Time: 5821.123456, CPU: 1, PID: 42, Comm: "ktbench", Event: "sys_getppid", Fields: map[string]string{"name": "getppid", "ret": "1"},
			Node: "vm", Namespace: "ktbench", Pod: "load", Container: "app"},
	)
	var b []byte
	for i := range events {
		var err error
		b, err = enc.AppendJSON(b[:0], &events[i])
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if want := stdJSON(t, &events[i]); !bytes.Equal(b, want) {
			t.Errorf("event %d:\n got %s\nwant %s", i, b, want)
		}
	}
}

func TestEventJSONRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	str := func() string {
		n := r.IntN(12)
		var sb strings.Builder
		for range n {
			switch r.IntN(4) {
			case 0:
				sb.WriteByte(byte(r.IntN(256))) // any byte, valid UTF-8 or not
			case 1:
				sb.WriteRune(rune(r.IntN(0x110000)))
			default:
				sb.WriteByte(byte(0x20 + r.IntN(0x60)))
			}
		}
		return sb.String()
	}
	var enc EventEncoder
	var b []byte
	for i := range 20000 {
		ev := Event{Time: math.Float64frombits(r.Uint64()), CPU: r.IntN(512), PID: int(r.Int32()), Comm: str(), Event: str(),
			Node: str(), Namespace: str(), Pod: str(), Container: str(), Text: str()}
		if math.IsNaN(ev.Time) || math.IsInf(ev.Time, 0) {
			ev.Time = r.Float64() * 1e6
		}
		if n := r.IntN(5); n > 0 {
			ev.Fields = map[string]string{}
			for range n {
				ev.Fields[str()] = str()
			}
		}
		var err error
		if b, err = enc.AppendJSON(b[:0], &ev); err != nil {
			t.Fatal(err)
		}
		if want := stdJSON(t, &ev); !bytes.Equal(b, want) {
			t.Fatalf("event %d:\n got %q\nwant %q", i, b, want)
		}
	}
}

func TestEventJSONRejectsNaN(t *testing.T) {
	var enc EventEncoder
	for _, tm := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		b, err := enc.AppendJSON([]byte("kept"), &Event{Time: tm, Event: "x"})
		if err == nil {
			t.Errorf("time %v: no error", tm)
		}
		if string(b) != "kept" {
			t.Errorf("time %v: the buffer became %q, want it unchanged", tm, b)
		}
	}
}

func TestEventJSONDoesNotAllocate(t *testing.T) {
	var enc EventEncoder
	ev := Event{Time: 5821.123456, CPU: 1, PID: 42, Comm: "ktbench", Event: "sys_getppid",
		Fields: map[string]string{"name": "getppid", "ret": "1", "id": "110"},
		Node:   "vm", Namespace: "ktbench", Pod: "load", Container: "app"}
	b := make([]byte, 0, 1024)
	allocs := testing.AllocsPerRun(1000, func() {
		b, _ = enc.AppendJSON(b[:0], &ev)
	})
	if allocs != 0 {
		t.Errorf("%v allocations an event, want 0", allocs)
	}
}

func FuzzEventJSON(f *testing.F) {
	for i, s := range oddStrings {
		f.Add(oddTimes[i%len(oddTimes)], i, s, s+"k", s)
	}
	var enc EventEncoder
	f.Fuzz(func(t *testing.T, tm float64, cpu int, comm, key, value string) {
		if math.IsNaN(tm) || math.IsInf(tm, 0) {
			return // TestEventJSONRejectsNaN
		}
		ev := Event{Time: tm, CPU: cpu, PID: -cpu, Comm: comm, Event: value, Fields: map[string]string{key: value, comm: key},
			Node: key, Namespace: comm, Pod: value, Container: key, Text: comm + value}
		b, err := enc.AppendJSON(nil, &ev)
		if err != nil {
			t.Fatal(err)
		}
		if want := stdJSON(t, &ev); !bytes.Equal(b, want) {
			t.Fatalf("\n got %q\nwant %q", b, want)
		}
	})
}

func BenchmarkEventJSON(b *testing.B) {
	ev := Event{Time: 5821.123456, CPU: 1, PID: 42, Comm: "ktbench", Event: "sys_getppid",
		Fields: map[string]string{"name": "getppid", "ret": "1", "id": "110"},
		Node:   "vm", Namespace: "ktbench", Pod: "load", Container: "app"}
	b.Run("EventEncoder", func(b *testing.B) {
		var enc EventEncoder
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf, _ = enc.AppendJSON(buf[:0], &ev)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		for b.Loop() {
			buf.Reset()
			_ = enc.Encode(&ev)
		}
	})
}
