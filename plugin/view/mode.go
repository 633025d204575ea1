package view

import (
	"fmt"

	"github.com/ktrace-dev/kubectl-trace/hooks"
)

// Values of --view.
const (
	// Lines prints one line per row, as a pipe gets it.
	Lines = "lines"
	// Table draws the hook's view (its table or histogram) wherever the
	// output goes, a file included.
	Table = "table"
	// Auto, the default, draws the view on a terminal only: stdout is a
	// terminal, -o text and no --output-dir.
	Auto = "auto"
)

// Modes are the values of --view, for its help and completion.
var Modes = []string{Auto, Lines, Table}

// Output is where a trace's data goes, as the command's flags say.
type Output struct {
	// Terminal says stdout is a terminal.
	Terminal bool
	// Format is -o: hooks.OutputText, OutputJSON or OutputPCAP.
	Format string
	// Dir is --output-dir; empty for stdout.
	Dir string
}

// Use says whether a trace of d draws its view (true) or prints lines, as
// today, byte for byte (false). Auto draws only where a person reads:
// a terminal, -o text, no --output-dir, and a hook with a view. Table
// asks for the view anyway, and fails where it cannot be drawn, with what
// to change.
func Use(mode string, d hooks.Descriptor, out Output) (bool, error) {
	switch mode {
	case Lines:
		return false, nil
	case Auto, "":
		return d.View != nil && out.Terminal && out.Format == hooks.OutputText && out.Dir == "", nil
	case Table:
	default:
		return false, fmt.Errorf("--view %q: choose auto, lines or table", mode)
	}
	switch {
	case d.View == nil:
		return false, fmt.Errorf("--view table: hook %q has no table or histogram, its events are lines: use --view lines or auto", d.Name)
	case out.Format != hooks.OutputText:
		return false, fmt.Errorf("--view table draws text, not -o %s: drop --view, or use -o text", out.Format)
	case out.Dir != "":
		return false, fmt.Errorf("--view table draws on stdout, not in --output-dir files: drop one of them")
	}
	return true, nil
}
