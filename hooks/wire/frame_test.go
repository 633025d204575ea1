package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFrameRoundTrip(t *testing.T) {
	var b bytes.Buffer
	frames := []struct {
		target  int
		payload string
	}{{0, "line one\n"}, {3, "\xd4\xc3\xb2\xa1 binary"}, {65535, ""}, {1, "x\ny\n"}}
	for _, f := range frames {
		if err := WriteFrame(&b, f.target, []byte(f.payload)); err != nil {
			t.Fatal(err)
		}
	}
	var buf []byte
	for _, want := range frames {
		target, payload, nb, err := ReadFrame(&b, buf)
		buf = nb
		if err != nil {
			t.Fatal(err)
		}
		if target != want.target || string(payload) != want.payload {
			t.Errorf("frame = %d %q, want %d %q", target, payload, want.target, want.payload)
		}
	}
	if _, _, _, err := ReadFrame(&b, buf); !errors.Is(err, io.EOF) {
		t.Errorf("after the last frame: %v, want io.EOF", err)
	}
}

func TestFrameErrors(t *testing.T) {
	if err := WriteFrame(io.Discard, 70000, nil); err == nil {
		t.Error("target 70000 accepted")
	}
	var b bytes.Buffer
	_ = WriteFrame(&b, 1, []byte("hello"))
	cut := bytes.NewReader(b.Bytes()[:8])
	if _, _, _, err := ReadFrame(cut, nil); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut frame: %v, want io.ErrUnexpectedEOF", err)
	}
	huge := []byte{0, 1, 0xff, 0xff, 0xff, 0xff}
	if _, _, _, err := ReadFrame(bytes.NewReader(huge), nil); err == nil {
		t.Error("a 4 GiB frame length was accepted")
	}
}

func TestControlEncoding(t *testing.T) {
	idx := 2
	for _, c := range []Control{{Add: &Target{Pod: "web-4", ContainerID: "containerd://abc"}}, {Remove: &idx}, {Stop: true}} {
		line, err := EncodeControl(c)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Count(line, []byte("\n")) != 1 || line[len(line)-1] != '\n' {
			t.Fatalf("control is not one line: %q", line)
		}
		var got Control
		if err := jsonUnmarshal(line, &got); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(c, got); diff != "" {
			t.Errorf("control round trip (-want +got):\n%s", diff)
		}
	}
}

func TestDecodeControlRejects(t *testing.T) {
	for _, line := range []string{`{}`, `{"stop":true,"remove":1}`, `not json`} {
		if _, err := DecodeControl([]byte(line)); err == nil {
			t.Errorf("DecodeControl(%s) accepted it", line)
		}
	}
}
