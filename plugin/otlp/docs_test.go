package otlp

import (
	"os"
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ktrace-dev/kubectl-trace/hooks"
)

// TestDocsMappingTable: docs/export.md's field → attribute table is the
// code's, for every field of every hook in the catalogue.
func TestDocsMappingTable(t *testing.T) {
	b, err := os.ReadFile("../../docs/export.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| ([a-z-]+) \\| `([a-z_]+)` \\| `([a-z_.]+)` \\| (int|string) \\|$")
	var got [][4]string
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		got = append(got, [4]string{m[1], m[2], m[3], m[4]})
	}
	var want [][4]string
	for _, d := range hooks.Catalogue() {
		for _, f := range d.Fields {
			typ := "string"
			if isInt(d.Name, f.Name) {
				typ = "int"
			}
			want = append(want, [4]string{d.Name, f.Name, string(AttributeKey(d.Name, f.Name)), typ})
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("docs/export.md's table (-code +docs):\n%s", diff)
	}
}
