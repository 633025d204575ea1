package session

import (
	"bytes"
	"compress/flate"
	"io"
	"strings"
	"sync"
	"testing"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func deflate(t *testing.T, data []byte, finish bool) []byte {
	t.Helper()
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestSpeed)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if finish {
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	} else if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestInflating(t *testing.T) {
	data := []byte(strings.Repeat(`{"time":1.5,"event":"syscall","pod":"load"}`+"\n", 20000))
	for _, tt := range []struct {
		name    string
		stream  []byte
		want    []byte
		wantErr bool
	}{
		{"whole stream", deflate(t, data, true), data, false},
		// A helper that died after a flush: what was flushed is kept,
		// as an uncompressed stream cut short keeps what arrived.
		{"cut after a flush", deflate(t, data, false), data, false},
		{"corrupt", []byte("{\"time\":1.5}\n not deflate"), nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out lockedBuffer
			done := make(chan error, 1)
			cancelled := false
			w := inflating(&out, func() { cancelled = true }, done)
			// The attach writes in pieces of its own size.
			for p := tt.stream; len(p) > 0; {
				n := min(len(p), 1000)
				if _, err := w.Write(p[:n]); err != nil {
					break // the inflater gave up on a corrupt stream
				}
				p = p[n:]
			}
			_ = w.Close()
			err := <-done
			if (err != nil) != tt.wantErr || cancelled != tt.wantErr {
				t.Fatalf("error %v, session cancelled %v; want an error and a cancel: %v", err, cancelled, tt.wantErr)
			}
			if !tt.wantErr && !bytes.Equal(out.b.Bytes(), tt.want) {
				t.Errorf("inflated %d bytes, want %d", out.b.Len(), len(tt.want))
			}
		})
	}
}

// The inflater closes a pipe it writes to, so the demultiplexer behind it
// sees the end of the stream.
func TestInflatingClosesItsPipe(t *testing.T) {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	w := inflating(pw, func() {}, done)
	go func() {
		z := newDeflating(w)
		_, _ = z.Write([]byte("line\n"))
		_ = z.Close()
		_ = w.Close()
	}()
	got, err := io.ReadAll(pr)
	if err != nil || string(got) != "line\n" {
		t.Errorf("read %q, %v; want the line and a clean end", got, err)
	}
	if err := <-done; err != nil {
		t.Error(err)
	}
}

// deflatingWriter is a fake helper's compressed stdout (Request.Compress):
// every write is sync-flushed, as the helper's flusher does.
type deflatingWriter struct{ z *flate.Writer }

func newDeflating(w io.Writer) *deflatingWriter {
	z, _ := flate.NewWriter(w, flate.BestSpeed)
	return &deflatingWriter{z: z}
}

func (d *deflatingWriter) Write(p []byte) (int, error) {
	n, err := d.z.Write(p)
	if err == nil {
		err = d.z.Flush()
	}
	return n, err
}

// Close ends the stream, as the helper's last flush does.
func (d *deflatingWriter) Close() error { return d.z.Close() }
