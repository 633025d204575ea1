package runner

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

func TestExecArgv(t *testing.T) {
	id := strings.Repeat("ab", 32)
	proc := t.TempDir()
	for pid, cg := range map[string]string{
		"42": "4:memory:/kubepods/besteffort/podu/" + id + "\n",
		"43": "4:memory:/kubepods/besteffort/podu/" + id + "\n",
		"7":  "4:memory:/kubepods/besteffort/podv/other\n",
	} {
		if err := os.MkdirAll(filepath.Join(proc, pid, "task", pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(proc, pid, "cgroup"), []byte(cg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	target := wire.Target{Namespace: "ns", Pod: "web", Container: "app", ContainerID: "containerd://" + id}
	got, err := ExecArgv(proc, target, []string{"net", "mnt"}, []string{"ip", "-o", "addr"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"nsenter", "-t", "42", "--net", "--mount", "--", "ip", "-o", "addr"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("argv (-want +got):\n%s", diff)
	}
	if _, err := ExecArgv(proc, target, []string{"time"}, []string{"true"}); err == nil || !strings.Contains(err.Error(), `unknown namespace "time"`) {
		t.Errorf("unknown namespace: %v", err)
	}
	if _, err := ExecArgv(proc, target, []string{"net"}, nil); err == nil {
		t.Error("an empty command was accepted")
	}
	other := target
	other.ContainerID = "containerd://" + strings.Repeat("cd", 32)
	if _, err := ExecArgv(proc, other, []string{"net"}, []string{"true"}); err == nil {
		t.Error("a container that is not on the node was accepted")
	}
}

// Every namespace the plugin accepts for --ns has an nsenter flag here, and
// no other.
func TestExecNamespacesHaveFlags(t *testing.T) {
	var mapped []string
	for ns := range nsenterFlags {
		mapped = append(mapped, ns)
	}
	slices.Sort(mapped)
	if diff := cmp.Diff(wire.ExecNamespaces, mapped); diff != "" {
		t.Errorf("namespaces (-plugin +helper):\n%s", diff)
	}
}
