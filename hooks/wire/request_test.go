package wire

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ktrace-dev/kubectl-trace/hooks"
)

func validRequest() Request {
	return Request{
		Version:   ProtocolVersion,
		SessionID: "abc12",
		Hook:      "sched",
		Args:      map[string]string{"k": "v=w"},
		Output:    hooks.OutputJSON,
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

// The flags survive the trip; an older helper, which does not know Text,
// refuses it as an unknown field (TestDecodeRequestRejects) rather than
// misread the request, so ProtocolVersion stays.
func TestRequestFlagsRoundTrip(t *testing.T) {
	want := validRequest()
	want.Text, want.Compress, want.Framed = true, true, true
	enc, err := want.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeRequest(enc)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	raw, _ := base64.StdEncoding.DecodeString(enc)
	if !strings.Contains(string(raw), `"text":true`) {
		t.Errorf("encoded request %s lacks \"text\":true", raw)
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
	for _, want := range []Status{
		{Kind: StatusStats, Events: 12, Lost: 3, Seconds: 1.5},
		{Kind: StatusStarted, Clock: ClockMonotonic, ClockOffset: 1764683712123456789},
		{Kind: StatusStats, Events: 1, Clock: ClockRealtime},
	} {
		var b strings.Builder
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
	}
	for _, line := range []string{"tcpdump: listening on eth0", `{"other":1}`, `{"ktrace":`, ""} {
		if _, ok := ParseStatus([]byte(line)); ok {
			t.Errorf("ParseStatus(%q) took a plain line for a status", line)
		}
	}
}
