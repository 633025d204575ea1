package runner

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gatedWriter blocks every Write until the gate is open, then records.
type gatedWriter struct {
	gate   chan struct{}
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	<-g.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	g.writes++
	return g.buf.Write(p)
}

func (g *gatedWriter) written() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.Len()
}

func TestSpoolKeepsOrderInLargeWrites(t *testing.T) {
	g := &gatedWriter{gate: make(chan struct{})}
	close(g.gate)
	s := newSpool(g)
	var want bytes.Buffer
	for i := range 200000 {
		line := fmt.Appendf(nil, "event %d %s\n", i, strings.Repeat("x", i%97))
		want.Write(line)
		if _, err := s.Write(line); err != nil {
			t.Fatal(err)
		}
		if i%50000 == 0 {
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g.buf.Bytes(), want.Bytes()) {
		t.Fatalf("wrote %d bytes, not the %d given in order", g.buf.Len(), want.Len())
	}
	if limit := want.Len()/spoolChunk + 8; g.writes > limit {
		t.Errorf("%d writes for %d bytes, want at most %d: the chunks are not filled", g.writes, want.Len(), limit)
	}
}

// A stalled stdout holds at most spoolChunks chunks; then Write blocks
// (the kernel's buffers take over and count what they drop).
func TestSpoolBlocksWhenFull(t *testing.T) {
	g := &gatedWriter{gate: make(chan struct{})}
	s := newSpool(g)
	chunk := bytes.Repeat([]byte{'x'}, spoolChunk)
	var taken atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range spoolChunks + 10 {
			if _, err := s.Write(chunk); err != nil {
				return
			}
			taken.Add(1)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	n := int(taken.Load())
	// One chunk in the writer, spoolChunks queued, one being filled.
	if n > spoolChunks+2 {
		t.Errorf("%d chunks taken by a stalled stdout, want at most %d", n, spoolChunks+2)
	}
	if n < spoolChunks {
		t.Errorf("only %d chunks taken before blocking, want at least %d", n, spoolChunks)
	}
	close(g.gate)
	<-done
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	if want := (spoolChunks + 10) * spoolChunk; g.written() != want {
		t.Errorf("%d bytes written after the stall, want %d", g.written(), want)
	}
}

func waitFor(cond func() bool) error {
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			return errors.New("not within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

func TestSpoolReportsWriteError(t *testing.T) {
	s := newSpool(failingWriter{})
	if _, err := s.Write([]byte("one\n")); err != nil {
		t.Fatalf("the first write fails before anything was written: %v", err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(func() bool { _, err := s.Write([]byte("x")); return err != nil }); err != nil {
		t.Fatalf("writes still succeed after stdout failed: %v", err)
	}
	if err := s.close(); !errors.Is(err, errBrokenPipe) {
		t.Errorf("close: %v, want %v", err, errBrokenPipe)
	}
	if _, err := s.Write([]byte("x")); err == nil {
		t.Error("a write after close succeeded")
	}
}

// A flush pushes through the compressor what went to it in full chunks,
// even with nothing new buffered: the data can be inflated before close.
func TestSpoolCompressedFlushAfterFullChunks(t *testing.T) {
	pr, pw := io.Pipe()
	s := newSpool(pw)
	s.setCompressed()
	data := bytes.Repeat([]byte("0123456789abcdef\n"), 2*spoolChunk/17+1)[:2*spoolChunk]
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, len(data))
		_, _ = io.ReadFull(flate.NewReader(pr), b)
		got <- b
	}()
	if _, err := s.Write(data); err != nil {
		t.Fatal(err)
	}
	if len(s.buf) != 0 {
		t.Fatalf("%d bytes still buffered after two full chunks", len(s.buf))
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if !bytes.Equal(b, data) {
			t.Error("inflated data differs from what was written")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the flushed chunks could not be inflated within 5 s")
	}
	go io.Copy(io.Discard, pr) // let close write the stream's end
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
}
