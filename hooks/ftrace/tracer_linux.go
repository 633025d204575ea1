//go:build linux

package ftrace

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// tracefsInfo answers kernelInfo from a tracefs mount.
type tracefsInfo struct{ root string }

func (k tracefsInfo) syscalls() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(k.root, "events", "syscalls"))
	if err != nil {
		return nil, err
	}
	exits := map[string]bool{}
	for _, e := range entries {
		if n, ok := strings.CutPrefix(e.Name(), "sys_exit_"); ok {
			exits[n] = true
		}
	}
	var out []string
	for _, e := range entries {
		if n, ok := strings.CutPrefix(e.Name(), "sys_enter_"); ok && exits[n] {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no syscall events")
	}
	return out, nil
}

func (k tracefsInfo) filterFunctions() ([]string, error) {
	f, err := os.Open(filepath.Join(k.root, "available_filter_functions"))
	if err != nil {
		return nil, bareErr(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "vfs_read" or "nf_hook_slow [nf_tables]"
		name, _, _ := strings.Cut(sc.Text(), " ")
		if name != "" {
			out = append(out, name)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// setupTracer turns the function tracer on in the instance for the plan's
// functions, scoped to tids with set_ftrace_pid and options/function-fork.
// The filter is set before the tracer so that it never traces every
// function, not even for a moment.
func (s *Session) setupTracer(tids []int) error {
	s.tracer = true // from here on, Close resets what was set
	steps := []struct{ file, value string }{
		{"set_ftrace_filter", strings.Join(s.plan.functions, " ")},
		{"set_ftrace_pid", joinInts(tids)},
		{"current_tracer", "function"},
	}
	for _, st := range steps {
		if err := writeFile(s.inst, st.file, st.value, os.O_TRUNC); err != nil {
			return fmt.Errorf("setting %s of tracefs instance %q to %q: %w: the kernel refuses function tracing (lockdown, or no CONFIG_FUNCTION_TRACER)", st.file, s.dir, st.value, err)
		}
	}
	return nil
}

// resetTracer puts the instance's tracer back to nop and clears its
// filters, on every exit path.
func (s *Session) resetTracer() error {
	var errs []error
	if err := writeFile(s.inst, "current_tracer", "nop", os.O_TRUNC); err != nil {
		errs = append(errs, fmt.Errorf("resetting current_tracer of tracefs instance %q: %w", s.dir, err))
	}
	for _, f := range []string{"set_ftrace_filter", "set_ftrace_pid"} {
		// A kernel that refused the setup refuses these too: they were
		// never set.
		if err := writeFile(s.inst, f, "", os.O_TRUNC); err != nil && !errors.Is(err, os.ErrPermission) {
			errs = append(errs, fmt.Errorf("clearing %s of tracefs instance %q: %w", f, s.dir, err))
		}
	}
	return errors.Join(errs...)
}
