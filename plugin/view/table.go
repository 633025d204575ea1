package view

import (
	"slices"
	"strconv"
	"strings"
)

// gap is the blank between two columns of a table.
const gap = "  "

// line is one row of a table: a row of one target's latest interval.
type line struct {
	s  *series
	iv *interval
	r  row
	// timeAll is the target's time over the interval's rows, for shares.
	timeAll uint64
}

// column is one column of a table.
type column struct {
	head  string
	right bool
	// soft is the width a column that may be cut (the target, the key) is
	// cut to before columns are dropped, hard the narrowest it gets; 0
	// for a column that is never cut.
	soft, hard int
	// drop orders the columns a narrow terminal drops, the highest first;
	// 0 is never dropped.
	drop int
	cell func(l line) string
	// paint styles a cell; nil leaves it plain.
	paint func(string) string
}

// columns are the table's columns, in the order issue 14 lists them:
// the target (merged tables only), the key, the count, the rate, and the
// columns the rows' times give when they have them (latency).
func (s *Screen) columns(target, latency bool) []column {
	st := s.cfg.Styles
	var cols []column
	if target {
		cols = append(cols, column{head: "TARGET", soft: 16, hard: 8, cell: func(l line) string { return l.s.label }})
	}
	cols = append(cols,
		column{head: strings.ToUpper(clean(s.view.Key)), soft: 12, hard: 6, cell: func(l line) string { return l.r.key },
			paint: func(c string) string { return st.Key.Render(c) }},
		column{head: "COUNT", right: true, cell: func(l line) string { return strconv.FormatUint(l.r.count, 10) }},
		column{head: "RATE/s", right: true, drop: 2, cell: func(l line) string {
			if l.iv.length <= 0 {
				return "-"
			}
			return rate(float64(l.r.count) / l.iv.length.Seconds())
		}})
	if !latency {
		return cols
	}
	return append(cols,
		column{head: "TOTAL", right: true, drop: 4, cell: func(l line) string { return nanos(float64(l.r.total)) }},
		column{head: "AVG", right: true, drop: 1, cell: func(l line) string {
			return nanos(float64(l.r.total) / float64(l.r.count))
		}},
		column{head: "%TIME", right: true, drop: 3, cell: func(l line) string {
			if l.timeAll == 0 {
				return "-"
			}
			return percent(float64(l.r.total) / float64(l.timeAll))
		}})
}

// layout is a table's columns fitted to a width.
type layout struct {
	cols   []column
	widths []int
	// cells are the rows' cells, one per column kept.
	cells [][]string
}

// fit keeps as many of cols as width w allows, cutting the columns that
// may be cut to their soft width before it drops any; false when even
// the columns never dropped do not fit at their hard widths.
func fit(cols []column, lines []line, w int) (layout, bool) {
	natural := make([]int, len(cols))
	all := make([][]string, len(lines))
	for i, c := range cols {
		natural[i] = width(c.head)
	}
	for j, l := range lines {
		all[j] = make([]string, len(cols))
		for i, c := range cols {
			all[j][i] = c.cell(l)
			natural[i] = max(natural[i], width(all[j][i]))
		}
	}
	keep := make([]int, len(cols))
	for i := range keep {
		keep[i] = i
	}
	for floor(cols, natural, keep, true) > w {
		i := dropNext(cols, keep)
		if i < 0 {
			break
		}
		keep = slices.Delete(keep, i, i+1)
	}
	soft := floor(cols, natural, keep, true) <= w
	if !soft && floor(cols, natural, keep, false) > w {
		return layout{}, false
	}
	l := layout{}
	for _, i := range keep {
		l.cols = append(l.cols, cols[i])
		l.widths = append(l.widths, natural[i])
	}
	// Cut the columns that may be cut, the one with most room first.
	for sum(l.widths)+len(gap)*(len(keep)-1) > w {
		i := widest(l.cols, l.widths, soft)
		if i < 0 {
			break
		}
		l.widths[i]--
	}
	for j := range all {
		row := make([]string, len(keep))
		for k, i := range keep {
			row[k] = all[j][i]
		}
		l.cells = append(l.cells, row)
	}
	return l, true
}

// floor is the width of the columns keep at their soft (or hard) widths.
func floor(cols []column, natural, keep []int, soft bool) int {
	total := len(gap) * (len(keep) - 1)
	for _, i := range keep {
		m := natural[i]
		if c := cols[i]; c.soft > 0 {
			m = min(m, c.soft)
			if !soft {
				m = min(m, c.hard)
			}
		}
		total += m
	}
	return total
}

// dropNext is the index in keep of the column to drop next; -1 when only
// columns that are never dropped are left.
func dropNext(cols []column, keep []int) int {
	best := -1
	for k, i := range keep {
		if d := cols[i].drop; d > 0 && (best < 0 || d > cols[keep[best]].drop) {
			best = k
		}
	}
	return best
}

// widest is the cuttable column with the most room above its floor.
func widest(cols []column, widths []int, soft bool) int {
	best, room := -1, 0
	for i, c := range cols {
		if c.soft == 0 {
			continue
		}
		floor := c.soft
		if !soft {
			floor = c.hard
		}
		if r := widths[i] - floor; r > room {
			best, room = i, r
		}
	}
	return best
}

func sum(ns []int) int {
	t := 0
	for _, n := range ns {
		t += n
	}
	return t
}

// header draws the layout's column header.
func (s *Screen) header(l layout) string {
	cells := make([]string, len(l.cols))
	for i, c := range l.cols {
		cells[i] = align(cut(c.head, l.widths[i]), l.widths[i], c.right)
	}
	return s.cfg.Styles.Column.Render(strings.TrimRight(strings.Join(cells, gap), " "))
}

// row draws the layout's j-th row.
func (l layout) row(j int) string {
	var b strings.Builder
	for i, c := range l.cols {
		text := cut(l.cells[j][i], l.widths[i])
		pad := strings.Repeat(" ", l.widths[i]-width(text))
		if c.paint != nil {
			text = c.paint(text)
		}
		if i > 0 {
			b.WriteString(gap)
		}
		switch {
		case c.right:
			b.WriteString(pad + text)
		case i < len(l.cols)-1:
			b.WriteString(text + pad)
		default:
			b.WriteString(text)
		}
	}
	return b.String()
}

func align(s string, w int, right bool) string {
	if right {
		return padLeft(s, w)
	}
	return padRight(s, w)
}
