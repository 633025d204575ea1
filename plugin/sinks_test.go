package plugin

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

func TestByNode(t *testing.T) {
	ts := []wire.Target{{Node: "n2", Pod: "a"}, {Node: "n1", Pod: "b"}, {Node: "n2", Pod: "c"}}
	nodes, groups := byNode(ts)
	if diff := cmp.Diff([]string{"n1", "n2"}, nodes); diff != "" {
		t.Errorf("nodes (-want +got):\n%s", diff)
	}
	if got := len(groups["n2"]); got != 2 || groups["n2"][0].Pod != "a" || groups["n2"][1].Pod != "c" {
		t.Errorf("n2 group = %+v", groups["n2"])
	}
}

func TestOutputsPrefixesMergedText(t *testing.T) {
	var b bytes.Buffer
	o := newOutputs(newStopOnErrorWriter(&b), hooks.OutputText, "", true, newStyles(&b, ColorNever))
	a := wire.Target{Namespace: "ns", Pod: "web-1", Container: "app"}
	c := wire.Target{Namespace: "ns", Pod: "web-2", Container: "app"}
	if err := o.write(a, []byte("1.0 [000] x-1 e: a\n2.0 [000] x-1 e: b\n")); err != nil {
		t.Fatal(err)
	}
	if err := o.write(c, []byte("3.0 [001] y-2 e: c\n")); err != nil {
		t.Fatal(err)
	}
	want := "web-1/app 1.0 [000] x-1 e: a\nweb-1/app 2.0 [000] x-1 e: b\nweb-2/app 3.0 [001] y-2 e: c\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("merged output (-want +got):\n%s", diff)
	}
	if n, ok := o.count(a); !ok || n != 2 {
		t.Errorf("count(web-1) = %d, %v; want 2", n, ok)
	}
}

func TestOutputsOneFilePerTarget(t *testing.T) {
	dir := t.TempDir()
	var stdout bytes.Buffer
	o := newOutputs(newStopOnErrorWriter(&stdout), hooks.OutputPCAP, dir, false, newStyles(&stdout, ColorNever))
	a := wire.Target{Namespace: "ns", Pod: "web-1", Container: "app"}
	c := wire.Target{Namespace: "ns", Pod: "web-2", Container: "app"}
	for _, w := range []struct {
		t wire.Target
		p string
	}{{a, "HDR-A"}, {c, "HDR-C"}, {a, "REC-A"}} {
		if err := o.write(w.t, []byte(w.p)); err != nil {
			t.Fatal(err)
		}
	}
	paths, err := o.close()
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 2 {
		t.Fatalf("paths = %v, want two files", paths)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "ns_web-1_app.pcap"))
	if string(got) != "HDR-AREC-A" {
		t.Errorf("web-1 file = %q", got)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout got %q with --output-dir", stdout.String())
	}
	if _, ok := o.count(a); ok {
		t.Error("pcap records are counted by lines")
	}
}

func TestOutputsColourPrefixOnlyWhenAsked(t *testing.T) {
	var b bytes.Buffer
	o := newOutputs(newStopOnErrorWriter(&b), hooks.OutputText, "", true, newStyles(&b, ColorAlways))
	_ = o.write(wire.Target{Pod: "web-1", Container: "app"}, []byte("x\n"))
	if !strings.Contains(b.String(), "\x1b[") {
		t.Errorf("--color always gave no colour: %q", b.String())
	}
	b.Reset()
	o = newOutputs(newStopOnErrorWriter(&b), hooks.OutputText, "", true, newStyles(&b, ColorNever))
	_ = o.write(wire.Target{Pod: "web-1", Container: "app"}, []byte("x\n"))
	if strings.Contains(b.String(), "\x1b[") {
		t.Errorf("--color never gave colour: %q", b.String())
	}
}
