package plugin

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

func TestOutputsPrefixesMergedText(t *testing.T) {
	var b bytes.Buffer
	o := newStdoutOutput(newStopOnErrorWriter(&b), hooks.OutputText, newStyles(&b, ColorNever))
	a := wire.Target{Namespace: "ns", Pod: "web-1", Container: "app"}
	c := wire.Target{Namespace: "ns", Pod: "web-2", Container: "app"}
	wa, _ := o.Open(a, true)
	wc, _ := o.Open(c, true)
	if err := wa.Write([]byte("1.0 [000] x-1 e: a\n2.0 [000] x-1 e: b\n")); err != nil {
		t.Fatal(err)
	}
	if err := wc.Write([]byte("3.0 [001] y-2 e: c\n")); err != nil {
		t.Fatal(err)
	}
	want := "web-1/app 1.0 [000] x-1 e: a\nweb-1/app 2.0 [000] x-1 e: b\nweb-2/app 3.0 [001] y-2 e: c\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("merged output (-want +got):\n%s", diff)
	}
}

// One target alone on stdout, or JSON and pcap, go as they are.
func TestOutputsUnmergedAsIs(t *testing.T) {
	for _, tt := range []struct {
		format string
		merged bool
	}{{hooks.OutputText, false}, {hooks.OutputJSON, true}, {hooks.OutputPCAP, true}} {
		var b bytes.Buffer
		o := newStdoutOutput(newStopOnErrorWriter(&b), tt.format, newStyles(&b, ColorNever))
		w, _ := o.Open(wire.Target{Namespace: "ns", Pod: "web-1", Container: "app"}, tt.merged)
		if err := w.Write([]byte("x\n")); err != nil {
			t.Fatal(err)
		}
		if b.String() != "x\n" {
			t.Errorf("-o %s, merged %v: stdout %q, want the record as it is", tt.format, tt.merged, b.String())
		}
	}
}

func TestOutputsColourPrefixOnlyWhenAsked(t *testing.T) {
	var b bytes.Buffer
	o := newStdoutOutput(newStopOnErrorWriter(&b), hooks.OutputText, newStyles(&b, ColorAlways))
	w, _ := o.Open(wire.Target{Pod: "web-1", Container: "app"}, true)
	_ = w.Write([]byte("x\n"))
	if !strings.Contains(b.String(), "\x1b[") {
		t.Errorf("--color always gave no colour: %q", b.String())
	}
	b.Reset()
	o = newStdoutOutput(newStopOnErrorWriter(&b), hooks.OutputText, newStyles(&b, ColorNever))
	w, _ = o.Open(wire.Target{Pod: "web-1", Container: "app"}, true)
	_ = w.Write([]byte("x\n"))
	if strings.Contains(b.String(), "\x1b[") {
		t.Errorf("--color never gave colour: %q", b.String())
	}
}

// A closed stdout asks the session to stop once and swallows the rest.
func TestStopOnErrorWriter(t *testing.T) {
	w := newStopOnErrorWriter(failingWriter{})
	for range 2 {
		if n, err := w.Write([]byte("x\n")); n != 2 || err != nil {
			t.Fatalf("Write = %d, %v; want the bytes taken without an error", n, err)
		}
	}
	select {
	case <-w.broken:
	default:
		t.Fatal("a failed write did not say stdout broke")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errBrokenPipe }

var errBrokenPipe = errors.New("broken pipe")
