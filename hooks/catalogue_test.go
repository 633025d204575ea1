package hooks

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCatalogue(t *testing.T) {
	names := Names()
	if len(names) == 0 {
		t.Fatal("empty catalogue")
	}
	seen := map[string]bool{}
	for _, d := range Catalogue() {
		if seen[d.Name] {
			t.Errorf("hook %q listed twice", d.Name)
		}
		seen[d.Name] = true
		if d.Summary == "" || len(d.Outputs) == 0 {
			t.Errorf("hook %q lacks a summary or outputs", d.Name)
		}
		switch d.Kind {
		case KindFtrace, KindEBPF, KindTcpdump:
		default:
			t.Errorf("hook %q has unknown kind %q", d.Name, d.Kind)
		}
		if got, ok := Lookup(d.Name); !ok || got.Name != d.Name {
			t.Errorf("Lookup(%q) = %v, %v", d.Name, got.Name, ok)
		}
	}
}

func TestResolveArgs(t *testing.T) {
	d := Descriptor{Name: "h", Params: []Param{
		{Name: "snaplen", Default: "262144", Check: func(v string) error {
			if v == "0" {
				return errorString("must be positive")
			}
			return nil
		}},
		{Name: "filter"},
	}}
	tests := []struct {
		name    string
		d       Descriptor
		given   map[string]string
		want    map[string]string
		wantErr string
	}{
		{name: "defaults", d: d, want: map[string]string{"snaplen": "262144"}},
		{name: "override", d: d, given: map[string]string{"snaplen": "96", "filter": "tcp port 80"},
			want: map[string]string{"snaplen": "96", "filter": "tcp port 80"}},
		{name: "unknown", d: d, given: map[string]string{"nope": "1"}, wantErr: `hook "h" has no parameter "nope": it takes snaplen, filter`},
		{name: "bad value", d: d, given: map[string]string{"snaplen": "0"}, wantErr: `--arg snaplen=0 for hook "h": must be positive`},
		{name: "no params", d: Descriptor{Name: "sched"}, given: map[string]string{"x": "1"}, wantErr: `hook "sched" takes no parameters`},
		{name: "no params, none given", d: Descriptor{Name: "sched"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.d.ResolveArgs(tt.given)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("args (-want +got):\n%s", diff)
			}
		})
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

// TestNodeWideCatalogue pins which hooks trace a whole node: a hook that
// starts refusing (or accepting) it must be a decision, with its reason.
func TestNodeWideCatalogue(t *testing.T) {
	var refused []string
	for _, d := range Catalogue() {
		err := d.CheckNodeWide()
		if (err != nil) != (d.NotNodeWide != "") {
			t.Errorf("%s: CheckNodeWide = %v with NotNodeWide %q", d.Name, err, d.NotNodeWide)
		}
		if err == nil {
			continue
		}
		refused = append(refused, d.Name)
		for _, want := range []string{d.NotNodeWide, "trace pods with it instead", "sched"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: refusal %q lacks %q", d.Name, err, want)
			}
		}
	}
	if diff := cmp.Diff([]string{"funcgraph"}, refused); diff != "" {
		t.Errorf("hooks refused node-wide (-want +got):\n%s", diff)
	}
}

// Every capability a hook asks for says what for: docs/security.md's
// table is generated from it.
func TestCapabilitiesSayWhy(t *testing.T) {
	for _, d := range Catalogue() {
		if len(d.Needs.Why) != len(d.Needs.Capabilities) {
			t.Errorf("hook %s: reasons for %v, capabilities %v", d.Name, d.Needs.Why, d.Needs.Capabilities)
		}
		for _, c := range d.Needs.Capabilities {
			if d.Needs.Why[c] == "" {
				t.Errorf("hook %s: capability %s says not why", d.Name, c)
			}
		}
	}
}
