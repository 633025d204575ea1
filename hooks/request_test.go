package hooks

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func validRequest() Request {
	return Request{
		Version:   ProtocolVersion,
		SessionID: "abc12",
		Hook:      "sched",
		Args:      map[string]string{"k": "v=w"},
		Output:    OutputJSON,
		MaxEvents: 10,
		MaxBytes:  1 << 20,
		Targets: []Target{{
			Node: "n1", Namespace: "default", Pod: "web", PodUID: "uid-1", Container: "app",
			ContainerID: "containerd://0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		}},
	}
}

func TestRequestRoundTrip(t *testing.T) {
	want := validRequest()
	enc, err := want.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(enc, "\n\x00") {
		t.Fatalf("encoded request is not environment-safe: %q", enc)
	}
	got, err := DecodeRequest(enc)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestDecodeRequestRejects(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Request)
		raw     string
		wantErr string
	}{
		{name: "not base64", raw: "%%%", wantErr: "decoding request"},
		{name: "unknown field", raw: "eyJ2ZXJzaW9uIjoxLCJib2d1cyI6dHJ1ZX0=", wantErr: "unknown field"},
		{name: "old protocol", mutate: func(r *Request) { r.Version = 0 }, wantErr: "protocol version 0"},
		{name: "unknown hook", mutate: func(r *Request) { r.Hook = "nope" }, wantErr: `unknown hook "nope"`},
		{name: "bad output", mutate: func(r *Request) { r.Output = "xml" }, wantErr: `cannot write output "xml"`},
		{name: "negative limit", mutate: func(r *Request) { r.MaxEvents = -1 }, wantErr: "must not be negative"},
		{name: "no targets", mutate: func(r *Request) { r.Targets = nil }, wantErr: "no targets"},
		{name: "short id", mutate: func(r *Request) { r.Targets[0].ContainerID = "containerd://abc" }, wantErr: "too short"},
		{name: "no session", mutate: func(r *Request) { r.SessionID = "" }, wantErr: "session id is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.raw
			if tt.mutate != nil {
				r := validRequest()
				tt.mutate(&r)
				var err error
				if raw, err = r.Encode(); err != nil {
					t.Fatal(err)
				}
			}
			_, err := DecodeRequest(raw)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("DecodeRequest error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestRuntimeID(t *testing.T) {
	for in, want := range map[string]string{
		"containerd://abc": "abc",
		"cri-o://def":      "def",
		"docker://123":     "123",
		"bare":             "bare",
	} {
		if got := (Target{ContainerID: in}).RuntimeID(); got != want {
			t.Errorf("RuntimeID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStatusRoundTrip(t *testing.T) {
	var b strings.Builder
	want := Status{Kind: StatusStats, Events: 12, Lost: 3, Seconds: 1.5}
	if err := WriteStatus(&b, want); err != nil {
		t.Fatal(err)
	}
	got, ok := ParseStatus([]byte(b.String()))
	if !ok {
		t.Fatalf("ParseStatus(%q) did not recognise a status line", b.String())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status round trip (-want +got):\n%s", diff)
	}
	for _, line := range []string{"tcpdump: listening on eth0", `{"other":1}`, `{"ktrace":`, ""} {
		if _, ok := ParseStatus([]byte(line)); ok {
			t.Errorf("ParseStatus(%q) took a plain line for a status", line)
		}
	}
}

func TestCatalogue(t *testing.T) {
	names := Names()
	if len(names) == 0 {
		t.Fatal("empty catalogue")
	}
	seen := map[string]bool{}
	for _, d := range Catalogue() {
		if seen[d.Name] {
			t.Errorf("hook %q listed twice", d.Name)
		}
		seen[d.Name] = true
		if d.Summary == "" || len(d.Outputs) == 0 {
			t.Errorf("hook %q lacks a summary or outputs", d.Name)
		}
		switch d.Kind {
		case KindFtrace, KindEBPF, KindTcpdump:
		default:
			t.Errorf("hook %q has unknown kind %q", d.Name, d.Kind)
		}
		if got, ok := Lookup(d.Name); !ok || got.Name != d.Name {
			t.Errorf("Lookup(%q) = %v, %v", d.Name, got.Name, ok)
		}
	}
}

func TestResolveArgs(t *testing.T) {
	d := Descriptor{Name: "h", Params: []Param{
		{Name: "snaplen", Default: "262144", Check: func(v string) error {
			if v == "0" {
				return errorString("must be positive")
			}
			return nil
		}},
		{Name: "filter"},
	}}
	tests := []struct {
		name    string
		d       Descriptor
		given   map[string]string
		want    map[string]string
		wantErr string
	}{
		{name: "defaults", d: d, want: map[string]string{"snaplen": "262144"}},
		{name: "override", d: d, given: map[string]string{"snaplen": "96", "filter": "tcp port 80"},
			want: map[string]string{"snaplen": "96", "filter": "tcp port 80"}},
		{name: "unknown", d: d, given: map[string]string{"nope": "1"}, wantErr: `hook "h" has no parameter "nope": it takes snaplen, filter`},
		{name: "bad value", d: d, given: map[string]string{"snaplen": "0"}, wantErr: `--arg snaplen=0 for hook "h": must be positive`},
		{name: "no params", d: Descriptor{Name: "sched"}, given: map[string]string{"x": "1"}, wantErr: `hook "sched" takes no parameters`},
		{name: "no params, none given", d: Descriptor{Name: "sched"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.d.ResolveArgs(tt.given)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("args (-want +got):\n%s", diff)
			}
		})
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }
