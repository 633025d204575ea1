package plugin

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

// Colour modes of --color.
const (
	ColorAuto   = "auto"
	ColorAlways = "always"
	ColorNever  = "never"
)

// styles are every style the plugin prints with, built from a renderer bound
// to the stream they are written to, so a redirected stream gets no escape
// codes even when the other one is a terminal. Trace data is never styled.
type styles struct {
	header, step, done, warn, fail, dim, name lipgloss.Style
	// color says whether escape codes are written at all.
	color bool
}

// newStyles builds the styles for w. auto follows the terminal and NO_COLOR.
func newStyles(w io.Writer, mode string) styles {
	r := lipgloss.NewRenderer(w)
	switch mode {
	case ColorAlways:
		r.SetColorProfile(termenv.ANSI256)
	case ColorNever:
		r.SetColorProfile(termenv.Ascii)
	default:
		if os.Getenv("NO_COLOR") != "" {
			r.SetColorProfile(termenv.Ascii)
		}
	}
	s := styles{
		header: r.NewStyle().Bold(true),
		step:   r.NewStyle().Foreground(lipgloss.Color("6")),
		done:   r.NewStyle().Foreground(lipgloss.Color("2")),
		warn:   r.NewStyle().Foreground(lipgloss.Color("3")),
		fail:   r.NewStyle().Foreground(lipgloss.Color("1")).Bold(true),
		dim:    r.NewStyle().Faint(true),
		name:   r.NewStyle().Bold(true),
	}
	s.color = r.ColorProfile() != termenv.Ascii
	return s
}

// validColor checks a --color value.
func validColor(mode string) error {
	switch mode {
	case ColorAuto, ColorAlways, ColorNever:
		return nil
	}
	return fmt.Errorf("--color %q: choose auto, always or never", mode)
}

// table renders rows under a bold header, columns aligned like kubectl's
// tables; widths ignore escape codes.
func (s styles) table(header []string, rows [][]string) string {
	widths := make([]int, len(header))
	for i, h := range header {
		widths[i] = lipgloss.Width(h)
	}
	for _, row := range rows {
		for i, cell := range row {
			widths[i] = max(widths[i], lipgloss.Width(cell))
		}
	}
	var b strings.Builder
	line := func(cells []string, style func(int, string) string) {
		for i, cell := range cells {
			text := style(i, cell)
			if i < len(cells)-1 {
				text += strings.Repeat(" ", widths[i]-lipgloss.Width(cell)+3)
			}
			b.WriteString(text)
		}
		b.WriteString("\n")
	}
	line(header, func(_ int, c string) string { return s.header.Render(c) })
	for _, row := range rows {
		line(row, func(_ int, c string) string { return c })
	}
	return b.String()
}
