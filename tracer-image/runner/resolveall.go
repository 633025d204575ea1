package runner

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ktrace-dev/kubectl-trace/hooks/attach"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// resolveAll resolves every target and returns those found with their
// index in the request. A target that is not found is a warning when
// others are (framed: a failed "target-ended" of its index); the session
// fails when none is.
func resolveAll(cfg Config, req wire.Request, st *statusWriter) ([]attach.Target, []int, error) {
	targets, framed := req.Targets, req.Framed
	var (
		found   []attach.Target
		indexes []int
		errs    []error
		missed  []int
	)
	for i, t := range targets {
		r, err := ResolveMode(cfg.ProcRoot, t, req.Mode)
		if err != nil {
			errs = append(errs, err)
			missed = append(missed, i)
			continue
		}
		if r.Method == attach.MethodNode {
			idx := i
			st.write(wire.Status{Kind: wire.StatusResolved, Target: &r.Target, Index: &idx, Method: r.Method,
				Message: "the whole node: every task, host processes and every container's"})
			found = append(found, r)
			indexes = append(indexes, i)
			continue
		}
		msg := fmt.Sprintf("%s, %s in cgroup %s", plural(len(r.PIDs), "process", "processes"), plural(len(r.TIDs), "thread", "threads"),
			strings.Join(cgroupPaths(r.Cgroups), ", "))
		if m, err := Members(cfg.ProcRoot, cfg.CgroupRoot, r); err == nil {
			msg += "; processes that join later are found in " + m.Source
		}
		idx := i
		st.write(wire.Status{Kind: wire.StatusResolved, Target: &r.Target, Index: &idx, Method: r.Method, PIDs: r.PIDs, Message: msg})
		found = append(found, r)
		indexes = append(indexes, i)
	}
	if len(found) == 0 {
		return nil, nil, errors.Join(errs...)
	}
	for j, err := range errs {
		s := wire.Status{Kind: wire.StatusWarning, Message: err.Error()}
		if nf := (*NotFoundError)(nil); errors.As(err, &nf) {
			t := nf.Target
			s.Target = &t
		}
		if framed {
			idx := missed[j]
			t := targets[idx]
			s = wire.Status{Kind: wire.StatusTargetEnded, Index: &idx, Target: &t, Failed: true, Message: err.Error()}
		}
		st.write(s)
	}
	return found, indexes, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// cgroupPaths returns the distinct paths of cgs, in order.
func cgroupPaths(cgs []attach.Cgroup) []string {
	var out []string
	for _, c := range cgs {
		if !slices.Contains(out, c.Path) {
			out = append(out, c.Path)
		}
	}
	return out
}
