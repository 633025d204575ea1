package wire

import (
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// EventEncoder writes Events as JSON lines, byte for byte what
// encoding/json's Encoder with SetEscapeHTML(false) writes for them, without
// reflection and, once warm, without allocating: at hundreds of thousands of
// events a second the reflective encoder (map key sorting, boxing, garbage)
// was most of the helper's CPU. Not safe for concurrent use; the zero value
// is ready.
type EventEncoder struct {
	keys []string // Fields' keys, sorted, reused from event to event
}

// AppendJSON appends ev as one JSON object and a newline to b. Like
// encoding/json it fails on a Time that is NaN or infinite, and then
// returns b as it was.
func (e *EventEncoder) AppendJSON(b []byte, ev *Event) ([]byte, error) {
	if math.IsNaN(ev.Time) || math.IsInf(ev.Time, 0) {
		return b, fmt.Errorf("encoding the event %q: time %v is not a JSON number", ev.Event, ev.Time)
	}
	b = append(b, `{"time":`...)
	b = appendFloat(b, ev.Time)
	b = append(b, `,"cpu":`...)
	b = strconv.AppendInt(b, int64(ev.CPU), 10)
	b = append(b, `,"pid":`...)
	b = strconv.AppendInt(b, int64(ev.PID), 10)
	b = append(b, `,"comm":`...)
	b = appendString(b, ev.Comm)
	b = append(b, `,"event":`...)
	b = appendString(b, ev.Event)
	if len(ev.Fields) > 0 {
		b = append(b, `,"fields":{`...)
		e.keys = e.keys[:0]
		for k := range ev.Fields {
			e.keys = append(e.keys, k)
		}
		sortStrings(e.keys)
		for i, k := range e.keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, ev.Fields[k])
		}
		b = append(b, '}')
	}
	b = append(b, `,"node":`...)
	b = appendString(b, ev.Node)
	b = append(b, `,"namespace":`...)
	b = appendString(b, ev.Namespace)
	b = append(b, `,"pod":`...)
	b = appendString(b, ev.Pod)
	b = append(b, `,"container":`...)
	b = appendString(b, ev.Container)
	if ev.Text != "" {
		b = append(b, `,"text":`...)
		b = appendString(b, ev.Text)
	}
	return append(b, "}\n"...), nil
}

// sortStrings sorts the handful of keys an event has by insertion, which
// for a dozen strings beats slices.Sort and never allocates.
func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// appendFloat is encoding/json's float64 format: the shortest
// representation, in exponent form only below 1e-6 or from 1e21, with the
// exponent not padded (ES6 number to string).
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 is written e-9.
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendString appends s quoted as encoding/json does without HTML
// escaping: '"' and '\\' escaped, control characters as \b \f \n \r \t or
// \u00XX, invalid UTF-8 as \ufffd, and U+2028 and U+2029 escaped (they end
// a line in JavaScript).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
