package otlp

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// decodeCorpus is lines of -o json as the helper writes them (by
// wire.EventEncoder, with the text field the helper may add) and lines
// that are not quite: the parser must agree with encoding/json on all.
func decodeCorpus(t testing.TB) (fast, other []string) {
	var enc wire.EventEncoder
	for _, s := range []string{"", "nginx", `a "quoted" \ back\slash`, "tab\there\nnewline\r\x00\x1f", "héllo wörld ✓ 😀",
		"bad utf8 \xff\xfe end", "line sep \u2028 para \u2029", "<html>&amp;", "/slashes/"} {
		ev := wire.Event{Time: 12345.678901234, CPU: 3, PID: 4242, Comm: s, Event: "sched_switch",
			Fields: map[string]string{"prev_state": "S", "path": s, "k\"ey": s}, Node: "n", Namespace: "ns", Pod: s, Container: "c"}
		b, err := enc.AppendJSON(nil, &ev)
		if err != nil {
			t.Fatal(err)
		}
		line := string(b[:len(b)-1])
		fast = append(fast, line, line[:len(line)-1]+`,"text":`+string(mustJSON(t, s))+"}")
	}
	for _, tm := range []float64{0, 1e-9, 1e21, -3.5, 1780000000.123456} {
		b, _ := enc.AppendJSON(nil, &wire.Event{Time: tm, Event: "e"})
		fast = append(fast, string(b[:len(b)-1]))
	}
	other = []string{
		`{"time":1,"event":"e","comm":null}`,
		`{"time":1,"event":"e","unknown":1}`,
		`{"Time":1,"EVENT":"e"}`,
		`{"time":01,"event":"e"}`,
		`{"time":1.,"event":"e"}`,
		`{"time":-,"event":"e"}`,
		`{"time":1e5,"event":"e","cpu":-0,"pid":123456789012345678901}`,
		`{"time":1,"event":"e","cpu":1.5}`,
		`{"time":1,"event":"e"} trailing`,
		`{"time":1,"event":"e",}`,
		`{"time":1,"event":"e","fields":{"a":"1"},"fields":{"b":"2"}}`,
		`{"time":1,"event":"e","fields":{"a":"1","a":"2"}}`,
		`{"time":1,"event":"e","fields":{"a":1}}`,
		`{"time":1,"event":"\ud83d\ude00 \ud83d x \ude00 \ud83d\u0041"}`,
		`{"time":1,"event":"\uZZZZ"}`,
		`{"time":1,"event":"e\q"}`,
		`{"ti\u006de":2,"event":"e"}`,
		"{\"time\":1,\"event\":\"raw\ttab\"}",
		`  { "time" : 1 , "event" : "e" , "fields" : { } }  `,
		`{}`,
		`[]`,
		`not json`,
		``,
	}
	return fast, other
}

func mustJSON(t testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// agree checks decodeEvent against encoding/json on one line.
func agree(t *testing.T, line string) {
	var ev wire.Event
	var text string
	err := decodeEvent([]byte(line), &ev, &text)
	var want jsonEvent
	wantErr := json.Unmarshal([]byte(line), &want)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("%q: error %v, encoding/json's %v", line, err, wantErr)
	}
	if err != nil {
		return
	}
	if diff := cmp.Diff(want, jsonEvent{Event: ev, Text: text}); diff != "" {
		t.Errorf("%q (-encoding/json +decodeEvent):\n%s", line, diff)
	}
}

// TestDecodeEvent: the parser gives what encoding/json gives, and takes
// the helper's lines itself (not through the fallback).
func TestDecodeEvent(t *testing.T) {
	fast, other := decodeCorpus(t)
	for _, line := range append(fast, other...) {
		agree(t, line)
	}
	for _, line := range fast {
		var ev wire.Event
		var text string
		if p := (eventParser{b: []byte(line)}); !p.event(&ev, &text) {
			t.Errorf("%q went to encoding/json", line)
		}
	}
}

func FuzzDecodeEvent(f *testing.F) {
	fast, other := decodeCorpus(f)
	for _, line := range append(fast, other...) {
		f.Add(line)
	}
	f.Fuzz(agree)
}

func BenchmarkDecodeEvent(b *testing.B) {
	line := []byte(`{"time":1000.000001,"cpu":1,"pid":4242,"comm":"nginx","event":"sched_switch","fields":{"next_comm":"swapper/1","next_pid":"0","next_prio":"120","prev_prio":"120","prev_state":"S"},"node":"node-1","namespace":"shop","pod":"web-0","container":"app","text":"1000.000001 [001] nginx-4242 sched_switch: prev_state=S ==> next_comm=swapper/1 next_pid=0"}`)
	b.ReportAllocs()
	for b.Loop() {
		var ev wire.Event
		var text string
		if err := decodeEvent(line, &ev, &text); err != nil {
			b.Fatal(err)
		}
	}
}
