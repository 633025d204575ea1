package otlp

import (
	"encoding/json"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// decodeEvent parses one line of -o json into ev and text (the line's
// "text" field, where the helper sends one). Lines in the shape
// wire.EventEncoder writes (an object of strings and numbers, with fields
// an object of strings) take a parser written for them, several times
// faster than encoding/json's reflection, which was most of the export's
// CPU; any other line goes to encoding/json, so the result is always what
// encoding/json would give.
func decodeEvent(line []byte, ev *wire.Event, text *string) error {
	p := eventParser{b: line}
	if p.event(ev, text) {
		return nil
	}
	*ev, *text = wire.Event{}, ""
	var je jsonEvent
	if err := json.Unmarshal(line, &je); err != nil {
		return err
	}
	*ev, *text = je.Event, je.Text
	return nil
}

// eventParser reads one event; every method returns false on anything it
// does not handle, and decodeEvent falls back.
type eventParser struct {
	b []byte
	i int
	// hasFields: encoding/json merges a repeated "fields" into the first.
	hasFields bool
}

func (p *eventParser) event(ev *wire.Event, text *string) bool {
	if !p.byte('{') {
		return false
	}
	if p.byte('}') {
		return p.end()
	}
	for {
		key, ok := p.rawString()
		if !ok || !p.byte(':') || !p.member(string(key), ev, text) {
			return false
		}
		if p.byte('}') {
			return p.end()
		}
		if !p.byte(',') {
			return false
		}
	}
}

// member reads the value of key into its field of ev.
func (p *eventParser) member(key string, ev *wire.Event, text *string) bool {
	var ok bool
	switch key {
	case "time":
		ev.Time, ok = p.float()
	case "cpu":
		ev.CPU, ok = p.int()
	case "pid":
		ev.PID, ok = p.int()
	case "comm":
		ev.Comm, ok = p.string()
	case "event":
		ev.Event, ok = p.string()
	case "node":
		ev.Node, ok = p.string()
	case "namespace":
		ev.Namespace, ok = p.string()
	case "pod":
		ev.Pod, ok = p.string()
	case "container":
		ev.Container, ok = p.string()
	case "text":
		*text, ok = p.string()
	case "fields":
		if p.hasFields {
			return false
		}
		p.hasFields = true
		ev.Fields, ok = p.fields()
	}
	return ok
}

// fields reads an object of strings.
func (p *eventParser) fields() (map[string]string, bool) {
	if !p.byte('{') {
		return nil, false
	}
	m := make(map[string]string, 8)
	if p.byte('}') {
		return m, true
	}
	for {
		k, ok := p.string()
		if !ok || !p.byte(':') {
			return nil, false
		}
		v, ok := p.string()
		if !ok {
			return nil, false
		}
		m[k] = v
		if p.byte('}') {
			return m, true
		}
		if !p.byte(',') {
			return nil, false
		}
	}
}

func (p *eventParser) space() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\r' || p.b[p.i] == '\n') {
		p.i++
	}
}

// byte consumes c (after blanks) when it is next.
func (p *eventParser) byte(c byte) bool {
	p.space()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *eventParser) end() bool {
	p.space()
	return p.i == len(p.b)
}

// number returns the bytes of a JSON number.
func (p *eventParser) number() []byte {
	p.space()
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		if (c < '0' || c > '9') && c != '-' && c != '+' && c != '.' && c != 'e' && c != 'E' {
			break
		}
		p.i++
	}
	return p.b[start:p.i]
}

func (p *eventParser) float() (float64, bool) {
	n := p.number()
	if !validNumber(n) {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(n), 64)
	return f, err == nil
}

// validNumber is JSON's number grammar (which strconv is laxer than):
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func validNumber(n []byte) bool {
	i := 0
	digits := func() int {
		start := i
		for i < len(n) && n[i] >= '0' && n[i] <= '9' {
			i++
		}
		return i - start
	}
	if i < len(n) && n[i] == '-' {
		i++
	}
	if i < len(n) && n[i] == '0' {
		i++
	} else if digits() == 0 {
		return false
	}
	if i < len(n) && n[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(n) && (n[i] == 'e' || n[i] == 'E') {
		i++
		if i < len(n) && (n[i] == '+' || n[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(n)
}

// int reads a JSON integer that fits an int (no fraction or exponent:
// anything else is for encoding/json).
func (p *eventParser) int() (int, bool) {
	n := p.number()
	neg := len(n) > 0 && n[0] == '-'
	if neg {
		n = n[1:]
	}
	if len(n) == 0 || len(n) > 18 || (n[0] == '0' && len(n) > 1) {
		return 0, false
	}
	v := 0
	for _, c := range n {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}

// rawString returns a string's bytes when it has no escapes.
func (p *eventParser) rawString() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) {
		switch c := p.b[p.i]; {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			return s, utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return nil, false
		}
		p.i++
	}
	return nil, false
}

// string reads a JSON string, unescaping it.
func (p *eventParser) string() (string, bool) {
	save := p.i
	if s, ok := p.rawString(); ok {
		return string(s), true
	}
	p.i = save
	if !p.byte('"') {
		return "", false
	}
	out := make([]byte, 0, 64)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return string(out), utf8.Valid(out)
		case c < 0x20:
			return "", false
		case c != '\\':
			out = append(out, c)
			p.i++
			continue
		}
		var ok bool
		if out, ok = p.escape(out); !ok {
			return "", false
		}
	}
	return "", false
}

// escape appends the escape at p.i (a backslash) unescaped.
func (p *eventParser) escape(out []byte) ([]byte, bool) {
	if p.i+1 >= len(p.b) {
		return out, false
	}
	c := p.b[p.i+1]
	p.i += 2
	switch c {
	case '"', '\\', '/':
		return append(out, c), true
	case 'b':
		return append(out, '\b'), true
	case 'f':
		return append(out, '\f'), true
	case 'n':
		return append(out, '\n'), true
	case 'r':
		return append(out, '\r'), true
	case 't':
		return append(out, '\t'), true
	case 'u':
		r, ok := p.hex4()
		if !ok {
			return out, false
		}
		if utf16.IsSurrogate(r) {
			// A pair, or encoding/json's U+FFFD for a lone half.
			if p.i+1 < len(p.b) && p.b[p.i] == '\\' && p.b[p.i+1] == 'u' {
				save := p.i
				p.i += 2
				if r2, ok := p.hex4(); ok {
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						return utf8.AppendRune(out, d), true
					}
				}
				p.i = save
			}
			r = utf8.RuneError
		}
		return utf8.AppendRune(out, r), true
	}
	return out, false
}

func (p *eventParser) hex4() (rune, bool) {
	if p.i+4 > len(p.b) {
		return 0, false
	}
	var r rune
	for _, c := range p.b[p.i : p.i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	p.i += 4
	return r, true
}
