package plugin

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"sync"

	"github.com/charmbracelet/lipgloss"
	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// outputs is where every session's trace data goes: the user's stdout
// (merged, each text line prefixed with its target when there are several,
// stern's style) or one file per target under --output-dir.
type outputs struct {
	mu     sync.Mutex
	out    *stopOnErrorWriter
	format string
	dir    string
	// prefix marks merged text lines with their target.
	prefix  bool
	styles  styles
	files   map[string]*os.File
	records map[string]uint64
	paths   []string
}

func newOutputs(out *stopOnErrorWriter, format, dir string, prefix bool, s styles) *outputs {
	return &outputs{out: out, format: format, dir: dir, prefix: prefix, styles: s,
		files: map[string]*os.File{}, records: map[string]uint64{}}
}

// write takes whole records of one target.
func (o *outputs) write(t wire.Target, payload []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	key := t.String()
	if o.format != hooks.OutputPCAP {
		o.records[key] += uint64(bytes.Count(payload, []byte{'\n'}))
	}
	if o.dir != "" {
		f, err := o.file(t)
		if err != nil {
			return err
		}
		_, err = f.Write(payload)
		return err
	}
	if !o.prefix {
		_, err := o.out.Write(payload)
		return err
	}
	p := o.prefixFor(t)
	var b bytes.Buffer
	for len(payload) > 0 {
		line := payload
		if i := bytes.IndexByte(payload, '\n'); i >= 0 {
			line, payload = payload[:i+1], payload[i+1:]
		} else {
			payload = nil
		}
		b.WriteString(p)
		b.Write(line)
	}
	_, err := o.out.Write(b.Bytes())
	return err
}

// prefixColors are the prefix colours, picked by a hash of the pod name so
// a pod keeps its colour across runs.
var prefixColors = []string{"1", "2", "3", "4", "5", "6", "9", "10", "11", "12", "13", "14"}

func (o *outputs) prefixFor(t wire.Target) string {
	h := fnv.New32a()
	key := t.Pod
	if t.IsNode() {
		key = t.Label()
	}
	_, _ = h.Write([]byte(key))
	style := o.styles.step.Foreground(lipgloss.Color(prefixColors[int(h.Sum32())%len(prefixColors)]))
	return style.Render(t.Label()) + " "
}

// file opens a target's file once: <namespace>_<pod>_<container>.<ext>, or node_<name>.<ext>.
func (o *outputs) file(t wire.Target) (*os.File, error) {
	key := t.String()
	if f, ok := o.files[key]; ok {
		return f, nil
	}
	ext := map[string]string{hooks.OutputText: "txt", hooks.OutputJSON: "jsonl", hooks.OutputPCAP: "pcap"}[o.format]
	name := t.FileName() + "." + ext
	path := filepath.Join(o.dir, name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("creating output file for %s: %w", t, err)
	}
	o.files[key] = f
	o.paths = append(o.paths, path)
	return f, nil
}

// count returns the records written for a target (lines of text or JSON).
func (o *outputs) count(t wire.Target) (uint64, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n, ok := o.records[t.String()]
	return n, ok && o.format != hooks.OutputPCAP
}

// close closes the files and returns their paths.
func (o *outputs) close() ([]string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var firstErr error
	for _, f := range o.files {
		if err := f.Close(); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return o.paths, firstErr
}
