package hooks

// Forms of View.
const (
	// ViewHistogram draws the rows of each interval as a log2 histogram:
	// one row per bucket, bounded by Low and High, counted by Count.
	ViewHistogram = "histogram"
	// ViewTable draws the rows of each interval as a table, one row per
	// Key, sorted by Count, redrawn in place on a terminal.
	ViewTable = "table"
)

// View says how a terminal draws a hook whose events are sums: rows that
// the helper emits together at every interval (one flush, every row of a
// target sharing the flush's Time) rather than one event per happening.
// It names the Event.Fields a row is made of, so that a new aggregating
// hook gets its histogram or table without code in the plugin
// (plugin/view draws them, `--view`).
type View struct {
	// Form is ViewHistogram or ViewTable.
	Form string
	// Key is the field naming a table's row, such as the syscall; unused
	// by a histogram.
	Key string
	// Count is the field a row counts (calls, waits); both forms.
	Count string
	// Total is a table's field summing the row's time in nanoseconds,
	// from which its average and share of time follow. Rows without it
	// (syscall-top with latency=false) are drawn without those columns.
	Total string
	// Low and High are a histogram bucket's bounds, both inclusive, in
	// Unit.
	Low, High string
	// Unit is what Low and High measure, as the histogram's header says
	// it ("usecs").
	Unit string
	// Interval is the parameter holding the time between flushes (a Go
	// duration; 0 flushes once, at the end), from which rates follow.
	Interval string
}
