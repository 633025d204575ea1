package view

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// tableFrame is the whole table: the header line with the session's
// state, then the latest interval of every target, merged into one table
// with a target column when that costs no column, else one section per
// target; cut to the terminal's height.
func (s *Screen) tableFrame(final bool) []string {
	w, st := s.cfg.Size.Width, s.cfg.Styles
	out := []string{s.title(final)}
	var shown []printed
	latency := false
	for _, se := range s.order {
		if iv := s.shownInterval(se, final); iv != nil {
			shown = append(shown, printed{se, iv})
			for _, r := range iv.rows {
				latency = latency || r.hasTotal
			}
		}
	}
	if len(shown) == 0 {
		wait := "waiting for the first interval (every " + s.interval.String() + ")"
		if s.interval == 0 {
			wait = "the rows come at the end of the session (interval 0)"
		}
		return append(out, st.Dim.Render(cut(wait, w)))
	}
	lines := tableLines(shown)
	var body []string
	sections, sok := fit(s.columns(false, latency), lines, w)
	merged, mok := fit(s.columns(true, latency), lines, w)
	switch {
	case len(s.order) == 1 && sok:
		body = append([]string{s.header(sections)}, rowsOf(sections, lines, nil)...)
	case len(s.order) > 1 && mok && (!sok || len(merged.cols) > len(sections.cols)):
		body = append([]string{s.header(merged)}, rowsOf(merged, lines, nil)...)
	case sok:
		body = s.sections(sections, lines, shown)
	default:
		body = []string{st.Dim.Render(cut("too narrow for the table", w))}
	}
	return append(out, s.limit(body)...)
}

// shownInterval is the interval a target's table shows: its latest, but
// at the end not a final flush shorter than half an interval (it came
// just after a tick and would show next to nothing) when a full one came
// before it; its rows are in -o json all the same.
func (s *Screen) shownInterval(se *series, final bool) *interval {
	if final && se.before != nil && s.interval > 0 && se.last.length < s.interval/2 {
		return se.before
	}
	return se.last
}

// tableLines are the rows of the shown intervals, the most counted
// first, ties broken by time, name and target so a frame never shuffles.
func tableLines(shown []printed) []line {
	var lines []line
	for _, p := range shown {
		var all uint64
		for _, r := range p.iv.rows {
			all += r.total
		}
		for _, r := range p.iv.rows {
			lines = append(lines, line{s: p.s, iv: p.iv, r: r, timeAll: all})
		}
	}
	slices.SortStableFunc(lines, func(a, b line) int {
		return cmp.Or(cmp.Compare(b.r.count, a.r.count), cmp.Compare(b.r.total, a.r.total),
			strings.Compare(a.r.key, b.r.key), strings.Compare(a.s.label, b.s.label))
	})
	return lines
}

// rowsOf draws the rows of lines that belong to se (nil: all).
func rowsOf(l layout, lines []line, se *series) []string {
	var out []string
	for j := range lines {
		if se == nil || lines[j].s == se {
			out = append(out, l.row(j))
		}
	}
	return out
}

// sections draws one table per target under a heading naming it and its
// interval, the columns aligned across them.
func (s *Screen) sections(l layout, lines []line, shown []printed) []string {
	st, w := s.cfg.Styles, s.cfg.Size.Width
	var out []string
	for i, p := range shown {
		if i > 0 {
			out = append(out, "")
		}
		out = append(out, st.Heading.Render(cut(p.s.label+" · "+s.intervalName(p.iv), w)))
		rows := rowsOf(l, lines, p.s)
		if len(rows) == 0 {
			out = append(out, st.Dim.Render(cut("  nothing counted in this interval", w)))
			continue
		}
		out = append(out, s.header(l))
		out = append(out, rows...)
	}
	return out
}

func (s *Screen) intervalName(iv *interval) string {
	name := "interval " + strconv.Itoa(iv.seq) + " · " + seconds(iv.length)
	if iv.short {
		name += " · cut short by a limit"
	}
	return name
}

// limit cuts a terminal's table to its height, less the header line and
// the line the cursor rests on, so the redraw never scrolls.
func (s *Screen) limit(body []string) []string {
	h := s.cfg.Size.Height - 2
	if !s.cfg.Terminal || s.cfg.Size.Height <= 0 || len(body) <= h {
		return body
	}
	if h < 1 {
		return nil
	}
	more := len(body) - (h - 1)
	return append(body[:h-1:h-1], s.cfg.Styles.Dim.Render(cut("… "+strconv.Itoa(more)+" more lines: a taller terminal shows them", s.cfg.Size.Width)))
}

// title is the header line: the hook and the session's state.
func (s *Screen) title(final bool) string { return s.titleOf(s.state, final) }

func (s *Screen) titleOf(st State, final bool) string {
	sty := s.cfg.Styles
	name := clean(s.cfg.Hook.Name)
	if final {
		name += " (ended)"
	}
	lost := strconv.FormatUint(st.Lost, 10) + " lost"
	if st.Lost > 0 {
		lost = sty.Warn.Render(lost)
	}
	every := "every " + s.interval.String()
	if s.interval == 0 {
		every = "at the end"
	}
	targets := plural(uint64(max(0, st.Targets)), "target")
	if len(s.order) == 1 && st.Targets <= 1 {
		// A table of one target has no target column: name it here.
		targets = s.order[0].label
	}
	// What a narrow terminal loses first comes last.
	parts := []string{sty.Title.Render(name), plural(st.Events, "event"), lost, elapsed(st.Elapsed) + " elapsed", targets, every}
	sep := sty.Dim.Render(" · ")
	for len(parts) > 2 && width(strings.Join(parts, sep)) > s.cfg.Size.Width {
		parts = parts[:len(parts)-1]
	}
	return cut(strings.Join(parts, sep), s.cfg.Size.Width)
}

func plural(n uint64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.FormatUint(n, 10) + " " + noun + "s"
}
