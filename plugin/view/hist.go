package view

import (
	"io"
	"slices"
	"strconv"
	"strings"
)

// Bar widths of a histogram: wider is no easier to read, narrower than
// barMin says too little, and below barPct the percentages make way.
const (
	barMax = 100
	barMin = 4
	barPct = 12
)

// eighths draws a bar's last, partial, column.
var eighths = []string{"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"}

// drawHistograms prints the intervals completed since the last call, and
// at the end each target's whole session when it had several intervals.
func (s *Screen) drawHistograms(final bool) error {
	var lines []string
	for _, p := range s.fresh {
		lines = append(lines, s.histBlock(p.s, p.iv.rows, s.histTitle(p.s, p.iv))...)
		lines = append(lines, "")
	}
	s.fresh = nil
	if final {
		for _, se := range s.order {
			if se.n > 1 {
				title := se.label + " · whole session · " + strconv.Itoa(se.n) + " intervals · " + countOf(se.sum) + " counted"
				lines = append(lines, s.histBlock(se, se.sum, title)...)
				lines = append(lines, "")
			}
		}
	}
	if len(lines) == 0 {
		return nil
	}
	_, err := io.WriteString(s.w, strings.Join(lines, "\n")+"\n")
	return err
}

func (s *Screen) histTitle(se *series, iv *interval) string {
	what := "interval " + strconv.Itoa(iv.seq) + " · " + seconds(iv.length)
	if s.interval == 0 {
		what = "whole session · " + seconds(iv.length)
	}
	t := se.label + " · " + what + " · " + countOf(iv.rows) + " counted"
	if iv.short {
		t += " · cut short by a limit"
	}
	return t
}

// histBlock draws one histogram: a heading, a column header and one line
// per bucket, fitted to the terminal's width.
func (s *Screen) histBlock(se *series, rows []row, title string) []string {
	st, w := s.cfg.Styles, s.cfg.Size.Width
	out := []string{st.Heading.Render(cut(title, w))}
	if len(rows) == 0 {
		return append(out, st.Dim.Render(cut("  nothing counted in this interval", w)))
	}
	var loW, hiW, countW int
	var most, all uint64
	for _, r := range rows {
		loW = max(loW, len(strconv.FormatUint(r.lo, 10)))
		hiW = max(hiW, len(strconv.FormatUint(r.hi, 10)))
		countW = max(countW, len(strconv.FormatUint(r.count, 10)))
		most, all = max(most, r.count), all+r.count
	}
	rangeW := max(loW+4+hiW, width(s.view.Unit))
	countW = max(countW, len("count"))
	fixed := rangeW + 2 + countW + 2
	pct := w-fixed-7 >= barPct
	if pct {
		fixed += 7
	}
	bar := min(barMax, max(barMin, w-fixed))
	head := padLeft(s.view.Unit, rangeW) + "  " + padLeft("count", countW) + "  "
	if pct {
		head += padLeft("%", 5) + "  "
	}
	out = append(out, st.Column.Render(cut(head+"distribution", w)))
	for _, r := range rows {
		line := padLeft(strconv.FormatUint(r.lo, 10), loW) + " -> " + padRight(strconv.FormatUint(r.hi, 10), hiW)
		line = padRight(line, rangeW) + "  " + padLeft(strconv.FormatUint(r.count, 10), countW) + "  "
		if pct {
			line += st.Dim.Render(padLeft(percent(float64(r.count)/float64(all)), 5)) + "  "
		}
		out = append(out, cut(line+st.Bar.Render(bars(r.count, most, bar)), w))
	}
	return out
}

// bars is count's bar when most fills cols columns, in eighths of a
// column; a bucket with any count gets at least one eighth.
func bars(count, most uint64, cols int) string {
	if most == 0 || count == 0 {
		return ""
	}
	n := int((count*uint64(cols)*8 + most/2) / most)
	n = max(n, 1)
	return strings.Repeat("█", n/8) + eighths[n%8]
}

func countOf(rows []row) string {
	var n uint64
	for _, r := range rows {
		n += r.count
	}
	return strconv.FormatUint(n, 10)
}

// addBuckets adds an interval's buckets to a session's, by their bounds,
// keeping them from the lowest up and filling the empty ones between.
func addBuckets(sum, rows []row) []row {
	for _, r := range rows {
		i, found := slices.BinarySearchFunc(sum, r.lo, func(b row, lo uint64) int {
			switch {
			case b.lo < lo:
				return -1
			case b.lo > lo:
				return 1
			}
			return 0
		})
		if found {
			sum[i].count += r.count
			continue
		}
		sum = slices.Insert(sum, i, row{lo: r.lo, hi: r.hi, count: r.count})
	}
	return fillBuckets(sum)
}

// fillBuckets inserts the empty log2 buckets missing between two buckets
// (two intervals' ranges may not touch), so the bars read as one scale.
func fillBuckets(sum []row) []row {
	for i := 0; i+1 < len(sum); i++ {
		if next := sum[i].hi + 1; sum[i+1].lo > next {
			sum = slices.Insert(sum, i+1, row{lo: next, hi: min(2*next-1, sum[i+1].lo-1)})
		}
	}
	return sum
}
