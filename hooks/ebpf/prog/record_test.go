package prog

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRecordDetails(t *testing.T) {
	var r Record
	r.Add("path", "/etc/hosts")
	r.Int("result", -2)
	r.Uint("count", 7)
	r.Add("argv", `sh -c "echo hi"`)
	r.Add("empty", "")
	r.Add("eq", "a=b")
	r.Add("ctl", "a\x01b")
	want := `path=/etc/hosts result=-2 count=7 argv="sh -c \"echo hi\"" empty="" eq="a=b" ctl="a\x01b"`
	if got := string(r.Details(nil)); got != want {
		t.Errorf("details:\n got %s\nwant %s", got, want)
	}
	wantFields := map[string]string{"path": "/etc/hosts", "result": "-2", "count": "7", "argv": `sh -c "echo hi"`, "empty": "", "eq": "a=b", "ctl": "a\x01b"}
	if diff := cmp.Diff(wantFields, r.Fields()); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
}
