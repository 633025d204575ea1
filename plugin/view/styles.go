package view

import (
	"io"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

// Styles are the views' styles. They are built from the renderer of the
// plugin's one styles struct, the one bound to stdout, so --color,
// NO_COLOR and a redirected stdout decide for the views as they do for
// every other line the plugin writes there.
type Styles struct {
	// Title is the session's state line; Heading a target's heading.
	Title, Heading lipgloss.Style
	// Column is a table's or histogram's column header.
	Column lipgloss.Style
	// Key is a table row's name, Bar a histogram's bar.
	Key, Bar lipgloss.Style
	// Dim is for what only supports the numbers (percentages, separators);
	// Warn for what needs attention (lost events).
	Dim, Warn lipgloss.Style
}

// NewStyles builds the views' styles from r; an ASCII profile (no colour)
// gives styles that write no escape codes at all.
func NewStyles(r *lipgloss.Renderer) Styles {
	return Styles{
		Title:   r.NewStyle().Bold(true),
		Heading: r.NewStyle().Bold(true).Foreground(lipgloss.Color("6")),
		Column:  r.NewStyle().Faint(true),
		Key:     r.NewStyle().Bold(true),
		Bar:     r.NewStyle().Foreground(lipgloss.Color("6")),
		Dim:     r.NewStyle().Faint(true),
		Warn:    r.NewStyle().Foreground(lipgloss.Color("3")),
	}
}

// plain is Styles without colour, for output that is not a terminal.
func plain() Styles {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.Ascii)
	return NewStyles(r)
}
