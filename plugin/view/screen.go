package view

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// Size is the terminal's size in columns and rows; a Height of 0 is
// unknown (no limit), a Width of 0 is DefaultWidth.
type Size struct {
	Width, Height int
}

// DefaultWidth is the width of a view whose output has none (a pipe).
const DefaultWidth = 80

// State is the session's state, as the table's header line shows it.
type State struct {
	Targets int
	Events  uint64
	Lost    uint64
	Elapsed time.Duration
}

// Config is what a Screen draws and how.
type Config struct {
	// Hook is the hook traced; its View says the form.
	Hook hooks.Descriptor
	// Args are the hook's resolved arguments (Descriptor.ResolveArgs), for
	// the interval.
	Args   map[string]string
	Styles Styles
	// Terminal says the output is a terminal: a table is redrawn in place.
	// Elsewhere every frame is written after the one before.
	Terminal bool
	Size     Size
}

// Screen draws one session's rows as its hook's view. Its methods may be
// called from several goroutines; each writes whole frames, in order.
type Screen struct {
	mu       sync.Mutex
	w        io.Writer
	cfg      Config
	view     hooks.View
	interval time.Duration
	state    State
	series   map[string]*series
	order    []*series
	// fresh are the intervals completed since the last Draw (histograms
	// print each of them once).
	fresh []printed
	// dirty: an interval completed; restate: the header line changed, or
	// the size did.
	dirty, restate bool
	// frame is the table on screen; shown how many of its lines a redraw
	// moves back over (0: the next frame starts below).
	frame  []string
	shown  int
	hidden bool
	// partial is the start of a line Write has not seen the end of.
	partial []byte
	closed  bool
}

type printed struct {
	s  *series
	iv *interval
}

// New returns a Screen that draws to w; it fails when the hook has no
// view or its interval argument is not a duration.
func New(w io.Writer, cfg Config) (*Screen, error) {
	if cfg.Hook.View == nil {
		return nil, fmt.Errorf("hook %q has no view: its events are printed as lines", cfg.Hook.Name)
	}
	iv, err := intervalArg(cfg.Hook, cfg.Args)
	if err != nil {
		return nil, err
	}
	if cfg.Size.Width <= 0 {
		cfg.Size.Width = DefaultWidth
	}
	return &Screen{w: w, cfg: cfg, view: *cfg.Hook.View, interval: iv,
		series: map[string]*series{}, restate: true}, nil
}

// Write takes the helper's events as JSON lines (-o json), whole or cut
// anywhere, and draws what they complete: one Draw per Write, so the rows
// of a flush that arrive in one read are drawn once.
func (s *Screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.partial = append(s.partial, p...)
	var errs []error
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		line := bytes.TrimSpace(s.partial[:i])
		if len(line) > 0 {
			var ev wire.Event
			if err := json.Unmarshal(line, &ev); err != nil {
				errs = append(errs, fmt.Errorf("reading the helper's rows: %q: %w", abbrev(line), err))
			} else if err := s.add(&ev); err != nil {
				errs = append(errs, err)
			}
		}
		s.partial = s.partial[i+1:]
	}
	s.partial = slices.Clip(s.partial)
	errs = append(errs, s.draw(false))
	return len(p), errors.Join(errs...)
}

func abbrev(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

// Add takes one event; it draws nothing (see Draw).
func (s *Screen) Add(ev *wire.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.add(ev)
}

// add files ev under its target. A target's interval is complete at the
// helper's mark, at a row of a later flush (a new Time), or at Close.
func (s *Screen) add(ev *wire.Event) error {
	if s.closed {
		return nil
	}
	var r row
	if ev.Event != markEvent {
		var err error
		if r, err = parseRow(&s.view, ev); err != nil {
			return err
		}
	}
	se := s.seriesOf(eventTarget(ev))
	if se.open != nil && se.open.end != ev.Time {
		s.complete(se, -1)
	}
	if se.open == nil {
		se.open = &interval{end: ev.Time}
	}
	if ev.Event == markEvent {
		want, err := strconv.Atoi(ev.Fields[markRows])
		if err != nil {
			want = -1
		}
		s.complete(se, want)
		return nil
	}
	se.open.rows = append(se.open.rows, r)
	return nil
}

func (s *Screen) seriesOf(t wire.Target) *series {
	key := t.String()
	if se, ok := s.series[key]; ok {
		return se
	}
	se := &series{target: t, label: clean(t.Label())}
	s.series[key] = se
	s.order = append(s.order, se)
	return se
}

// complete closes se's open interval; want is the rows its mark
// announced, -1 without a mark.
func (s *Screen) complete(se *series, want int) {
	iv := se.open
	se.open = nil
	se.n++
	iv.seq = se.n
	iv.short = want >= 0 && len(iv.rows) < want
	switch {
	case se.last != nil:
		// Kernel times of two flushes of the same helper: exact.
		iv.length = time.Duration(math.Round((iv.end - se.last.end) * 1e9))
	case s.interval > 0:
		// The first tick comes one interval after the helper starts.
		iv.length = s.interval
	default:
		// Interval 0: one flush, at the end, of the whole session.
		iv.length = s.state.Elapsed
	}
	se.before, se.last = se.last, iv
	if s.view.Form == hooks.ViewHistogram {
		se.sum = addBuckets(se.sum, iv.rows)
	}
	s.fresh = append(s.fresh, printed{se, iv})
	s.dirty = true
}

// SetState updates the header line; a terminal's table is redrawn at the
// next Draw when the line it shows changed.
func (s *Screen) SetState(st State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.view.Form == hooks.ViewTable && s.title(false) != s.titleOf(st, false) {
		s.restate = true
	}
	s.state = st
}

// Resize follows the terminal's new size. A narrower terminal may have
// rewrapped the table on screen, so the next one is drawn below it
// rather than over it.
func (s *Screen) Resize(sz Size) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sz.Width <= 0 {
		sz.Width = DefaultWidth
	}
	if sz.Width < s.cfg.Size.Width {
		s.shown = 0
	}
	if sz != s.cfg.Size {
		s.restate = true
	}
	s.cfg.Size = sz
}

// Draw writes what changed since the last Draw: the histograms of the
// intervals completed since, or the table redrawn.
func (s *Screen) Draw() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draw(false)
}

// Clear takes a terminal's table off the screen, so that another line can
// be written where it was; Redraw puts it back below that line. Call them
// around anything else written to the same terminal (the plugin's
// messages on stderr), or the next redraw would overwrite that line.
func (s *Screen) Clear() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.cfg.Terminal || s.shown == 0 {
		return nil
	}
	_, err := fmt.Fprintf(s.w, "\r\x1b[%dA\x1b[J", s.shown)
	s.shown, s.hidden = 0, true
	return err
}

// Redraw puts back the table Clear took away.
func (s *Screen) Redraw() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.hidden {
		return nil
	}
	s.hidden = false
	return s.put(s.frame)
}

// Close completes every target's last interval (the helpers' final
// flush) and draws the final frame, which stays on the screen: every
// stream must have ended first.
func (s *Screen) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	for _, se := range s.order {
		if se.open != nil {
			s.complete(se, -1)
		}
	}
	err := s.draw(true)
	s.closed = true
	return err
}

// draw writes what is due; final draws the end of the session.
func (s *Screen) draw(final bool) error {
	if s.closed {
		return nil
	}
	if s.view.Form == hooks.ViewHistogram {
		return s.drawHistograms(final)
	}
	if !final && !s.dirty && !(s.restate && s.cfg.Terminal) {
		return nil
	}
	s.dirty, s.restate, s.fresh = false, false, nil
	lines := s.tableFrame(final)
	if !s.cfg.Terminal && slices.Equal(lines, s.frame) {
		return nil
	}
	if !s.cfg.Terminal && s.frame != nil {
		if _, err := io.WriteString(s.w, "\n"); err != nil {
			return err
		}
	}
	s.frame = lines
	if s.hidden {
		// Between Clear and Redraw: Redraw draws it.
		return nil
	}
	return s.put(lines)
}

// put writes a frame; on a terminal over the one before it, each line
// erased to its end and what is left of a longer frame erased below.
func (s *Screen) put(lines []string) error {
	var b strings.Builder
	if !s.cfg.Terminal {
		for _, l := range lines {
			b.WriteString(l + "\n")
		}
		_, err := io.WriteString(s.w, b.String())
		return err
	}
	if s.shown > 0 {
		fmt.Fprintf(&b, "\r\x1b[%dA", s.shown)
	}
	for _, l := range lines {
		b.WriteString(l + "\x1b[K\n")
	}
	b.WriteString("\x1b[J")
	s.shown = len(lines)
	_, err := io.WriteString(s.w, b.String())
	return err
}
