package session

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// Output is one place a session's trace data goes: the user's stdout, a
// directory of files, a copy kept in the cluster, an exporter. Every output
// of Config.Outputs receives every record (a tee), target by target.
type Output interface {
	// Open is called once for each target, before its first records, from
	// the goroutine that reads the target's helper. merged says that
	// several targets' records may share the session (several targets, or
	// followed sources): one stream of text should then mark each line with
	// its target.
	Open(t wire.Target, merged bool) (TargetWriter, error)
	// Close is called once, after the last write of every target.
	Close() error
}

// TargetWriter takes one target's trace data. Calls for one target never
// overlap; calls for different targets may.
type TargetWriter interface {
	// Write takes whole records: lines of text or JSON (each with its
	// newline), or pcap data, whose first write holds the file header. p
	// is only valid during the call. An error ends the target's helper
	// stream: the session fails with it.
	Write(p []byte) error
}

// EventWriter is a TargetWriter that takes decoded events. When the
// helper writes JSON (Config.Format hooks.OutputJSON), the session decodes
// each line once, and an EventWriter gets the events instead of the lines;
// with another format it gets the lines through Write.
type EventWriter interface {
	TargetWriter
	// WriteEvents takes the events of whole lines, in order; the slice and
	// its events are only valid during the call.
	WriteEvents(events []wire.Event) error
}

// Preparer is an Output that has something to set up before the first
// helper is created (a directory): Prepare runs after every check passed,
// so that a refused session leaves nothing behind.
type Preparer interface {
	Prepare() error
}

// tee hands every target's records to every output, and counts them.
type tee struct {
	format  string
	outputs []Output
	// merged is set before the first helper starts (see Output.Open).
	merged bool

	mu      sync.Mutex
	targets map[string]*targetOut
	order   []*targetOut
	total   atomic.Uint64
}

func newTee(format string, outputs []Output) *tee {
	return &tee{format: format, outputs: outputs, targets: map[string]*targetOut{}}
}

// target returns the writer of t's records; a target that is traced again
// (the same pod and container) keeps its writer.
func (o *tee) target(t wire.Target) *targetOut {
	o.mu.Lock()
	defer o.mu.Unlock()
	key := t.String()
	if w, ok := o.targets[key]; ok {
		return w
	}
	w := &targetOut{tee: o, t: t}
	o.targets[key] = w
	o.order = append(o.order, w)
	return w
}

// prepare runs every output's Prepare.
func (o *tee) prepare() error {
	for _, out := range o.outputs {
		if p, ok := out.(Preparer); ok {
			if err := p.Prepare(); err != nil {
				return err
			}
		}
	}
	return nil
}

// close closes every output.
func (o *tee) close() error {
	var errs []error
	for _, out := range o.outputs {
		errs = append(errs, out.Close())
	}
	return errors.Join(errs...)
}

// records returns the records written for t (lines of text or JSON).
func (o *tee) records(t wire.Target) uint64 {
	o.mu.Lock()
	w, ok := o.targets[t.String()]
	o.mu.Unlock()
	if !ok {
		return 0
	}
	return w.records.Load()
}

// targetOut is one target's side of the tee.
type targetOut struct {
	tee *tee
	t   wire.Target

	mu      sync.Mutex
	opened  bool
	writers []TargetWriter
	events  bool // some writer wants decoded events
	decoded []wire.Event
	records atomic.Uint64
}

// write hands whole records to each output, opening them at the first.
func (w *targetOut) write(p []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.opened {
		if err := w.open(); err != nil {
			return err
		}
	}
	if w.tee.format != hooks.OutputPCAP {
		n := uint64(bytes.Count(p, []byte{'\n'}))
		w.records.Add(n)
		w.tee.total.Add(n)
	}
	var events []wire.Event
	if w.events {
		var err error
		if events, err = w.decode(p); err != nil {
			return err
		}
	}
	for _, tw := range w.writers {
		var err error
		if ew, ok := tw.(EventWriter); ok && w.events {
			err = ew.WriteEvents(events)
		} else {
			err = tw.Write(p)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *targetOut) open() error {
	w.opened = true
	for _, out := range w.tee.outputs {
		tw, err := out.Open(w.t, w.tee.merged)
		if err != nil {
			return err
		}
		w.writers = append(w.writers, tw)
		if _, ok := tw.(EventWriter); ok && w.tee.format == hooks.OutputJSON {
			w.events = true
		}
	}
	return nil
}

// decode parses JSON lines into events, reusing the last call's slice.
func (w *targetOut) decode(p []byte) ([]wire.Event, error) {
	events := w.decoded[:0]
	for len(p) > 0 {
		line := p
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			line, p = p[:i], p[i+1:]
		} else {
			p = nil
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var ev wire.Event
		if err := json.Unmarshal(line, &ev); err != nil {
			return nil, fmt.Errorf("decoding an event of %s: %w", w.t, err)
		}
		events = append(events, ev)
	}
	w.decoded = events
	return events, nil
}

// DirOutput writes one file per target into a directory:
// <namespace>_<pod>_<container>.<ext>, or node_<name>.<ext> for a whole
// node, where ext follows the format (txt, jsonl, pcap).
type DirOutput struct {
	dir, format string

	mu    sync.Mutex
	files []*os.File
	paths []string
}

// NewDirOutput writes format's records into dir, which Prepare creates.
func NewDirOutput(dir, format string) *DirOutput {
	return &DirOutput{dir: dir, format: format}
}

// Prepare creates the directory.
func (d *DirOutput) Prepare() error {
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return fmt.Errorf("creating --output-dir: %w", err)
	}
	return nil
}

// Open creates the target's file.
func (d *DirOutput) Open(t wire.Target, _ bool) (TargetWriter, error) {
	ext := map[string]string{hooks.OutputText: "txt", hooks.OutputJSON: "jsonl", hooks.OutputPCAP: "pcap"}[d.format]
	path := filepath.Join(d.dir, t.FileName()+"."+ext)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("creating output file for %s: %w", t, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.files = append(d.files, f)
	d.paths = append(d.paths, path)
	return fileWriter{f}, nil
}

// Close closes the files.
func (d *DirOutput) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var firstErr error
	for _, f := range d.files {
		if err := f.Close(); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// Paths lists the files written, in the order they were created.
func (d *DirOutput) Paths() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.paths...)
}

type fileWriter struct{ f *os.File }

func (w fileWriter) Write(p []byte) error {
	_, err := w.f.Write(p)
	return err
}
