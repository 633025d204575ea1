package view

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
)

// clean escapes what must not reach a terminal as it is: control
// characters (an escape sequence in a comm or a container name would
// move the cursor or recolour the screen), format characters such as
// bidirectional overrides, invalid UTF-8, and the backslash that would
// make the escapes ambiguous. Everything a workload or the kernel names
// passes through it before it is drawn.
func clean(s string) string {
	i := 0
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || r == '\\' || !unicode.IsPrint(r) {
			break
		}
		i += n
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.WriteString(s[:i])
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case unicode.IsPrint(r):
			b.WriteString(s[i : i+n])
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x10000:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
		i += n
	}
	return b.String()
}

// width is how many columns s takes on a terminal, escape codes aside.
func width(s string) int { return lipgloss.Width(s) }

// cut shortens s to at most w columns, ending it with "…" when it cut.
func cut(s string, w int) string {
	if w <= 0 {
		return ""
	}
	return ansi.Truncate(s, w, "…")
}

// padRight and padLeft fill s with blanks to w columns; they never cut.
func padRight(s string, w int) string { return s + strings.Repeat(" ", max(0, w-width(s))) }
func padLeft(s string, w int) string  { return strings.Repeat(" ", max(0, w-width(s))) + s }

// nanos formats a time in nanoseconds with three significant digits and
// the unit that keeps it short: 850ns, 4.50µs, 12.3ms, 1.23s.
func nanos(ns float64) string {
	units := []struct {
		div  float64
		name string
	}{{1e9, "s"}, {1e6, "ms"}, {1e3, "µs"}}
	for _, u := range units {
		if ns >= u.div {
			return sig3(ns/u.div) + u.name
		}
	}
	return strconv.FormatFloat(ns, 'f', 0, 64) + "ns"
}

// sig3 formats v >= 1 with three significant digits (more for 1000 and
// above, which keep their integer part).
func sig3(v float64) string {
	switch {
	case v >= 99.95:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 9.995:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// rate formats a count per second: whole numbers from 100 on, one
// decimal below.
func rate(perSec float64) string {
	if perSec >= 99.95 {
		return strconv.FormatFloat(perSec, 'f', 0, 64)
	}
	return strconv.FormatFloat(perSec, 'f', 1, 64)
}

// percent formats a share of 0 to 1 with one decimal.
func percent(share float64) string {
	return strconv.FormatFloat(100*share, 'f', 1, 64)
}

// seconds formats an interval's length: 1.00s, 250ms.
func seconds(d time.Duration) string {
	if d <= 0 {
		return "?"
	}
	return nanos(float64(d))
}

// elapsed formats the session's running time to the second: 12s, 1m05s.
func elapsed(d time.Duration) string {
	d = d.Round(time.Second)
	if d < time.Minute {
		return strconv.Itoa(int(d/time.Second)) + "s"
	}
	h, m, s := int(d/time.Hour), int(d/time.Minute)%60, int(d/time.Second)%60
	if h > 0 {
		return fmt.Sprintf("%dh%02dm%02ds", h, m, s)
	}
	return fmt.Sprintf("%dm%02ds", m, s)
}
