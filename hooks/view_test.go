package hooks

import (
	"slices"
	"testing"
)

// TestViews checks every View names fields its hook fills in and a
// parameter it takes, so a renderer never waits for a field that never
// comes; and that the two aggregating hooks have the form issue 14 asks for.
func TestViews(t *testing.T) {
	for _, d := range Catalogue() {
		v := d.View
		if v == nil {
			continue
		}
		fields := map[string]bool{}
		for _, f := range d.Fields {
			fields[f.Name] = true
		}
		var need []string
		switch v.Form {
		case ViewHistogram:
			need = []string{v.Count, v.Low, v.High}
			if v.Unit == "" || v.Key != "" || v.Total != "" {
				t.Errorf("hook %q: a histogram has a unit and neither key nor total: %+v", d.Name, *v)
			}
		case ViewTable:
			need = []string{v.Key, v.Count}
			if v.Total != "" {
				need = append(need, v.Total)
			}
			if v.Low != "" || v.High != "" {
				t.Errorf("hook %q: a table has no bucket bounds: %+v", d.Name, *v)
			}
		default:
			t.Errorf("hook %q: view form %q is neither %q nor %q", d.Name, v.Form, ViewHistogram, ViewTable)
		}
		for _, f := range need {
			if f == "" || !fields[f] {
				t.Errorf("hook %q: view field %q is not one of its fields %v", d.Name, f, d.Fields)
			}
		}
		if !slices.ContainsFunc(d.Params, func(p Param) bool { return p.Name == v.Interval }) {
			t.Errorf("hook %q: view interval %q is not one of its parameters", d.Name, v.Interval)
		}
		if !slices.Contains(d.Outputs, OutputJSON) {
			t.Errorf("hook %q: a view reads Event.Fields, which only -o json carries, but its outputs are %v", d.Name, d.Outputs)
		}
	}
	for name, form := range map[string]string{"runqlat": ViewHistogram, "syscall-top": ViewTable} {
		d, ok := Lookup(name)
		if !ok || d.View == nil || d.View.Form != form {
			t.Errorf("hook %q: view %+v, want form %q", name, d.View, form)
		}
	}
	for _, name := range []string{"sched", "exec", "tcpdump"} {
		if d, ok := Lookup(name); !ok || d.View != nil {
			t.Errorf("hook %q (found %t) prints one event per line, yet has view %+v", name, ok, d.View)
		}
	}
}
