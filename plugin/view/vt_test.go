package view

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// vt is the little of a terminal the views use, to check what a redraw
// leaves on the screen: lines written whole, the cursor moved up (CSI n
// A), a line erased to its end (CSI K) and the screen below the cursor
// (CSI J). Colour (SGR) is kept in the text. Anything else is an error,
// so a view cannot start writing what this does not check.
type vt struct {
	lines []string
	row   int
	col0  bool // the cursor is at the start of row
}

var csi = regexp.MustCompile(`^\x1b\[([0-9;]*)([A-Za-z])`)

func (t *vt) write(s string) error {
	t.col0 = true
	for len(s) > 0 {
		switch {
		case s[0] == '\r':
			t.col0 = true
			s = s[1:]
		case s[0] == '\n':
			t.row++
			t.col0 = true
			s = s[1:]
		case s[0] == 0x1b && !strings.HasSuffix(csi.FindString(s), "m"):
			m := csi.FindStringSubmatch(s)
			if m == nil {
				return fmt.Errorf("unknown escape %q", s[:min(len(s), 8)])
			}
			s = s[len(m[0]):]
			if err := t.control(m[1], m[2][0]); err != nil {
				return err
			}
		default:
			// Text up to the end of the line or a control; colour stays
			// part of the text.
			end := 0
			for end < len(s) && s[end] != '\r' && s[end] != '\n' {
				if s[end] == 0x1b {
					m := csi.FindStringSubmatch(s[end:])
					if m == nil || m[2] != "m" {
						break
					}
					end += len(m[0])
					continue
				}
				end++
			}
			if !t.col0 {
				return fmt.Errorf("text %q written in the middle of row %d", s[:end], t.row)
			}
			for len(t.lines) <= t.row {
				t.lines = append(t.lines, "")
			}
			t.lines[t.row] = s[:end]
			t.col0 = false
			s = s[end:]
		}
	}
	return nil
}

func (t *vt) control(arg string, op byte) error {
	if op == 'm' {
		return nil
	}
	n := 1
	if arg != "" {
		var err error
		if n, err = strconv.Atoi(arg); err != nil {
			return err
		}
	}
	switch op {
	case 'A':
		if n > t.row {
			return fmt.Errorf("cursor up %d from row %d", n, t.row)
		}
		t.row -= n
	case 'K':
		// Lines are written whole from column 0: nothing is left after them.
	case 'J':
		if t.row < len(t.lines) {
			t.lines = t.lines[:t.row]
		}
	default:
		return fmt.Errorf("unknown control %q", string(op))
	}
	return nil
}

// screen is what the terminal shows, one line per row.
func (t *vt) screen() string {
	// Rows above the cursor exist even when only a newline was written.
	for len(t.lines) < t.row {
		t.lines = append(t.lines, "")
	}
	var b strings.Builder
	for _, l := range t.lines {
		b.WriteString(l + "\n")
	}
	return b.String()
}
