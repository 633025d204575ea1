package runner

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

func testEvents(n int) []wire.Event {
	evs := make([]wire.Event, n)
	for i := range evs {
		evs[i] = wire.Event{Time: float64(i) / 1000, CPU: i % 2, PID: 1000 + i%7, Comm: "ktbench", Event: "syscall",
			Fields: map[string]string{"name": "getppid", "ret": fmt.Sprint(i)}, Node: "vm", Namespace: "ns", Pod: "load", Container: "app"}
	}
	return evs
}

// A compressed output is the same bytes once inflated, framed or not.
func TestOutputCompressed(t *testing.T) {
	for _, framed := range []bool{false, true} {
		t.Run(fmt.Sprintf("framed=%v", framed), func(t *testing.T) {
			var plain, packed bytes.Buffer
			a := newOutput(&plain, hooks.OutputJSON, time.Hour)
			b := newOutput(&packed, hooks.OutputJSON, time.Hour)
			b.setCompressed()
			if framed {
				index := func(ev *wire.Event) (int, bool) { return ev.PID % 3, true }
				a.setFramed(index)
				b.setFramed(index)
			}
			evs := testEvents(50000)
			for i := range evs {
				if err := a.emit(&evs[i], ""); err != nil {
					t.Fatal(err)
				}
				if err := b.emit(&evs[i], ""); err != nil {
					t.Fatal(err)
				}
			}
			if err := a.close(); err != nil {
				t.Fatal(err)
			}
			if err := b.close(); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(flate.NewReader(&packed))
			if err != nil {
				t.Fatalf("inflating: %v", err)
			}
			if !bytes.Equal(got, plain.Bytes()) {
				t.Fatalf("inflated %d bytes, not the %d of the uncompressed output", len(got), plain.Len())
			}
			if packed.Len()*5 > plain.Len() {
				t.Errorf("%d bytes compressed to %d: less than fivefold", plain.Len(), packed.Len())
			}
			// Limits count trace data, not compressed bytes.
			wantEvents, wantSize, _ := a.counts()
			if events, size, _ := b.counts(); events != int64(len(evs)) || events != wantEvents || size != wantSize {
				t.Errorf("counts %d events, %d bytes; want %d, %d", events, size, wantEvents, wantSize)
			}
		})
	}
}

// What the flusher flushed can be inflated before the stream ends: a slow
// trace shows up promptly even compressed.
func TestOutputCompressedFlushesWithoutClose(t *testing.T) {
	pr, pw := io.Pipe()
	o := newOutput(pw, hooks.OutputJSON, 10*time.Millisecond)
	o.setCompressed()
	defer o.close()
	ev := testEvents(1)[0]
	if err := o.emit(&ev, ""); err != nil {
		t.Fatal(err)
	}
	want := `{"time":0,"cpu":0,"pid":1000,"comm":"ktbench","event":"syscall","fields":{"name":"getppid","ret":"0"},"node":"vm","namespace":"ns","pod":"load","container":"app"}` + "\n"
	got := make([]byte, len(want))
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(flate.NewReader(pr), got)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the event could not be inflated within 5 s of being emitted")
	}
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("inflated line mismatch (-want +got):\n%s", diff)
	}
	go io.Copy(io.Discard, pr) // let close write the stream's end
}
