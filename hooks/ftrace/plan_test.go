package ftrace

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ktrace-dev/kubectl-trace/hooks"
)

// Each ftrace hook of the catalogue has a plan and each plan a hook of the
// catalogue; and what a plan enables, over its parameters' values, is
// exactly the descriptor's events: the same, or one with its <name>
// filled in, or the whole system of those. A plan that enabled an event
// the descriptor does not list, or never one it lists, fails here.
func TestPlansMatchCatalogue(t *testing.T) {
	var catalogued []string
	for _, d := range hooks.Catalogue() {
		if d.Kind == hooks.KindFtrace {
			catalogued = append(catalogued, d.Name)
		}
	}
	planned := slices.Sorted(func(yield func(string) bool) {
		for name := range plans {
			if !yield(name) {
				return
			}
		}
	})
	if diff := cmp.Diff(planned, catalogued); diff != "" {
		t.Errorf("ftrace hooks (-plans +catalogue):\n%s", diff)
	}
	k := fakeKernel{sys: []string{"openat", "read"}, fns: []string{"vfs_read", "vfs_write"}}
	for _, name := range catalogued {
		d, _ := hooks.Lookup(name)
		seen := map[string]bool{}
		for i, args := range argVariants(d) {
			p, err := newPlan(d, args, true, newTracker(), k)
			if err != nil {
				if i == 0 {
					t.Errorf("%s with its defaults: %v", name, err)
				}
				continue // a value this fake kernel has not
			}
			for _, e := range p.events {
				of := descriptorEvents(d, e)
				if len(of) == 0 {
					t.Errorf("%s %v: enables %q, which the descriptor does not list", name, args, e)
				}
				for _, x := range of {
					seen[x] = true
				}
			}
		}
		for _, e := range d.Events {
			if !seen[e] {
				t.Errorf("%s: the descriptor lists %q, which no plan enables", name, e)
			}
		}
	}
}

// argVariants are the values of d's parameters a plan is tried with: the
// defaults first, then each parameter as true, false or read, where its
// check accepts them.
func argVariants(d hooks.Descriptor) []map[string]string {
	out := []map[string]string{nil}
	for _, p := range d.Params {
		for _, v := range []string{"true", "false", "read"} {
			if p.Check != nil && p.Check(v) == nil && v != p.Default {
				out = append(out, map[string]string{p.Name: v})
			}
		}
	}
	return out
}

// descriptorEvents returns the events of d that event, which a plan
// enables, stands for.
func descriptorEvents(d hooks.Descriptor, event string) []string {
	var out []string
	for _, e := range d.Events {
		switch {
		case e == event:
			out = append(out, e)
		case strings.Contains(e, nameHole):
			prefix, suffix, _ := strings.Cut(e, nameHole)
			whole := event == systemOf(e)+":*"
			if whole || strings.HasPrefix(event, prefix) && strings.HasSuffix(event, suffix) && len(event) > len(prefix)+len(suffix) {
				out = append(out, e)
			}
		}
	}
	return out
}
