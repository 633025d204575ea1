package runner

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/ktrace-dev/kubectl-trace/hooks/attach"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// Container ids of the fake nodes. near* differ from id by one character,
// by a longer id that holds it, or by a prefix: they must never match.
const (
	id       = "4c5e1f0a9b8d7c6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e"
	nearLast = "4c5e1f0a9b8d7c6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2f"
	nearLong = "4c5e1f0a9b8d7c6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e00"
	nearPre  = "ff4c5e1f0a9b8d7c6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e"
	podUID   = "1d2e3f40-5a6b-7c8d-9e0f-a1b2c3d4e5f6"
	podSlice = "kubepods-besteffort-pod1d2e3f40_5a6b_7c8d_9e0f_a1b2c3d4e5f6.slice"
)

// fakeProc is one process of a fake /proc tree.
type fakeProc struct {
	pid    int
	cgroup string // the content of /proc/<pid>/cgroup; "" writes none (exited)
	tids   []int  // nil writes no task directory (exited during the scan), empty an empty one
}

// writeProc builds a /proc tree in dir.
func writeProc(t *testing.T, dir string, procs []fakeProc) {
	t.Helper()
	mustWrite(t, filepath.Join(dir, "self", "cgroup"), "0::/\n")
	mustWrite(t, filepath.Join(dir, "meminfo"), "MemTotal: 1 kB\n")
	for _, p := range procs {
		pd := filepath.Join(dir, strconv.Itoa(p.pid))
		if err := os.MkdirAll(pd, 0o755); err != nil {
			t.Fatal(err)
		}
		if p.cgroup != "" {
			mustWrite(t, filepath.Join(pd, "cgroup"), p.cgroup)
		}
		if p.tids != nil {
			if err := os.MkdirAll(filepath.Join(pd, "task"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for _, tid := range p.tids {
			if err := os.MkdirAll(filepath.Join(pd, "task", strconv.Itoa(tid)), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func mustWrite(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// v1 returns a cgroup v1 file with every controller at path, the
// name=systemd hierarchy at systemd, and the empty cgroup v2 of a hybrid
// node.
func v1(path, systemd string) string {
	return strings.Join([]string{
		"12:pids:" + path,
		"11:memory:" + path,
		"10:cpu,cpuacct:" + path,
		"9:devices:" + path,
		"1:name=systemd:" + systemd,
		"0::/",
	}, "\n") + "\n"
}

func v2(path string) string { return "0::" + path + "\n" }

func target(containerID string) wire.Target {
	return wire.Target{Node: "n1", Namespace: "ns", Pod: "web", PodUID: podUID, Container: "app", ContainerID: containerID}
}

// The helper and other processes every fake node has.
var bystanders = []fakeProc{
	{pid: 1, cgroup: v1("/", "/init.scope"), tids: []int{1}},
	{pid: 2, cgroup: v1("/", "/"), tids: []int{2}}, // kthreadd
	{pid: 900, cgroup: v1("/kubepods/besteffort/pod"+podUID+"/"+nearLast, "/"), tids: []int{900}},
	{pid: 901, cgroup: v1("/kubepods/besteffort/pod"+podUID+"/"+nearLong, "/"), tids: []int{901}},
	{pid: 902, cgroup: v2("/kubepods.slice/" + podSlice + "/cri-containerd-" + nearPre + ".scope"), tids: []int{902}},
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name   string
		target wire.Target
		procs  []fakeProc
		want   attach.Target
	}{
		{
			name:   "containerd, cgroupfs driver, cgroup v1 on a hybrid node",
			target: target("containerd://" + id),
			procs: []fakeProc{
				{pid: 4242, cgroup: v1("/kubepods/besteffort/pod"+podUID+"/"+id, "/"), tids: []int{4242, 4250, 4251}},
				{pid: 4300, cgroup: v1("/kubepods/besteffort/pod"+podUID+"/"+id, "/"), tids: []int{4300}},
			},
			want: attach.Target{
				Method: attach.MethodProcCgroup, PIDs: []int{4242, 4300}, TIDs: []int{4242, 4250, 4251, 4300},
				Cgroups: []attach.Cgroup{
					{Controllers: "cpu,cpuacct", Path: "/kubepods/besteffort/pod" + podUID + "/" + id},
					{Controllers: "devices", Path: "/kubepods/besteffort/pod" + podUID + "/" + id},
					{Controllers: "memory", Path: "/kubepods/besteffort/pod" + podUID + "/" + id},
					{Controllers: "pids", Path: "/kubepods/besteffort/pod" + podUID + "/" + id},
				},
			},
		},
		{
			name:   "containerd, systemd driver, cgroup v1 with name=systemd",
			target: target("containerd://" + id),
			procs: []fakeProc{
				{pid: 77, cgroup: v1("/kubepods.slice/"+podSlice+"/cri-containerd-"+id+".scope", "/kubepods.slice/"+podSlice+"/cri-containerd-"+id+".scope"), tids: []int{77}},
			},
			want: attach.Target{
				Method: attach.MethodProcCgroup, PIDs: []int{77}, TIDs: []int{77},
				Cgroups: []attach.Cgroup{
					{Controllers: "cpu,cpuacct", Path: "/kubepods.slice/" + podSlice + "/cri-containerd-" + id + ".scope"},
					{Controllers: "devices", Path: "/kubepods.slice/" + podSlice + "/cri-containerd-" + id + ".scope"},
					{Controllers: "memory", Path: "/kubepods.slice/" + podSlice + "/cri-containerd-" + id + ".scope"},
					{Controllers: "name=systemd", Path: "/kubepods.slice/" + podSlice + "/cri-containerd-" + id + ".scope"},
					{Controllers: "pids", Path: "/kubepods.slice/" + podSlice + "/cri-containerd-" + id + ".scope"},
				},
			},
		},
		{
			name:   "containerd, systemd driver, cgroup v2",
			target: target("containerd://" + id),
			procs: []fakeProc{
				{pid: 77, cgroup: v2("/kubepods.slice/kubepods-besteffort.slice/" + podSlice + "/cri-containerd-" + id + ".scope"), tids: []int{77, 78}},
			},
			want: attach.Target{
				Method: attach.MethodProcCgroup, PIDs: []int{77}, TIDs: []int{77, 78},
				Cgroups: []attach.Cgroup{{Path: "/kubepods.slice/kubepods-besteffort.slice/" + podSlice + "/cri-containerd-" + id + ".scope"}},
			},
		},
		{
			name:   "containerd, cgroupfs driver, cgroup v2, nested cgroup inside the container",
			target: target("containerd://" + id),
			procs: []fakeProc{
				{pid: 10, cgroup: v2("/kubepods/burstable/pod" + podUID + "/" + id), tids: []int{10}},
				{pid: 11, cgroup: v2("/kubepods/burstable/pod" + podUID + "/" + id + "/worker"), tids: []int{11}},
			},
			want: attach.Target{
				Method: attach.MethodProcCgroup, PIDs: []int{10, 11}, TIDs: []int{10, 11},
				Cgroups: []attach.Cgroup{{Path: "/kubepods/burstable/pod" + podUID + "/" + id}},
			},
		},
		{
			name:   "CRI-O, systemd driver, cgroup v2, conmon is not the container",
			target: target("cri-o://" + id),
			procs: []fakeProc{
				{pid: 500, cgroup: v2("/kubepods.slice/" + podSlice + "/crio-conmon-" + id + ".scope"), tids: []int{500}},
				{pid: 501, cgroup: v2("/kubepods.slice/" + podSlice + "/crio-" + id + ".scope"), tids: []int{501}},
			},
			want: attach.Target{
				Method: attach.MethodProcCgroup, PIDs: []int{501}, TIDs: []int{501},
				Cgroups: []attach.Cgroup{{Path: "/kubepods.slice/" + podSlice + "/crio-" + id + ".scope"}},
			},
		},
		{
			name:   "CRI-O, cgroupfs driver, cgroup v1",
			target: target("cri-o://" + id),
			procs: []fakeProc{
				{pid: 501, cgroup: "4:memory:/kubepods/besteffort/pod" + podUID + "/crio-" + id + "\n0::/\n", tids: []int{501}},
			},
			want: attach.Target{
				Method: attach.MethodProcCgroup, PIDs: []int{501}, TIDs: []int{501},
				Cgroups: []attach.Cgroup{{Controllers: "memory", Path: "/kubepods/besteffort/pod" + podUID + "/crio-" + id}},
			},
		},
		{
			name:   "Docker, systemd driver, cgroup v1",
			target: target("docker://" + id),
			procs: []fakeProc{
				{pid: 3000, cgroup: v1("/system.slice/docker-"+id+".scope", "/system.slice/docker-"+id+".scope"), tids: []int{3000}},
			},
			want: attach.Target{
				Method: attach.MethodProcCgroup, PIDs: []int{3000}, TIDs: []int{3000},
				Cgroups: []attach.Cgroup{
					{Controllers: "cpu,cpuacct", Path: "/system.slice/docker-" + id + ".scope"},
					{Controllers: "devices", Path: "/system.slice/docker-" + id + ".scope"},
					{Controllers: "memory", Path: "/system.slice/docker-" + id + ".scope"},
					{Controllers: "name=systemd", Path: "/system.slice/docker-" + id + ".scope"},
					{Controllers: "pids", Path: "/system.slice/docker-" + id + ".scope"},
				},
			},
		},
		{
			name:   "Docker (dockershim), cgroupfs driver, hybrid node with the container in both hierarchies",
			target: target("docker://" + id),
			procs: []fakeProc{
				{pid: 3000, cgroup: "4:memory:/kubepods/pod" + podUID + "/" + id + "\n0::/kubepods/pod" + podUID + "/" + id + "\n", tids: []int{3000}},
			},
			want: attach.Target{
				Method: attach.MethodProcCgroup, PIDs: []int{3000}, TIDs: []int{3000},
				Cgroups: []attach.Cgroup{
					{Path: "/kubepods/pod" + podUID + "/" + id},
					{Controllers: "memory", Path: "/kubepods/pod" + podUID + "/" + id},
				},
			},
		},
		{
			name:   "seen from a cgroup namespace, the path keeps its /..",
			target: target("containerd://" + id),
			procs: []fakeProc{
				{pid: 61, cgroup: v2("/../../" + podSlice + "/cri-containerd-" + id + ".scope"), tids: []int{61}},
			},
			want: attach.Target{
				Method: attach.MethodProcCgroup, PIDs: []int{61}, TIDs: []int{61},
				Cgroups: []attach.Cgroup{{Path: "/../../" + podSlice + "/cri-containerd-" + id + ".scope"}},
			},
		},
		{
			name:   "processes that exit during the scan are skipped",
			target: target("containerd://" + id),
			procs: []fakeProc{
				{pid: 70, cgroup: v2("/kubepods/pod" + podUID + "/" + id), tids: []int{70}},
				{pid: 71, cgroup: v2("/kubepods/pod" + podUID + "/" + id)}, // gone before its threads were listed
				{pid: 72, tids: []int{72}}, // gone before its cgroup was read
				{pid: 73, cgroup: v2("/kubepods/pod" + podUID + "/" + id), tids: []int{}}, // task/ empty
			},
			want: attach.Target{
				Method: attach.MethodProcCgroup, PIDs: []int{70}, TIDs: []int{70},
				Cgroups: []attach.Cgroup{{Path: "/kubepods/pod" + podUID + "/" + id}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeProc(t, dir, append(append([]fakeProc{}, bystanders...), tt.procs...))
			got, err := Resolve(dir, tt.target)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			tt.want.Target = tt.target
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Resolve mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResolveNotFound(t *testing.T) {
	tests := []struct {
		name   string
		target wire.Target
		want   string
	}{
		{
			name:   "only near misses on the node",
			target: target("containerd://" + id),
			want:   `container "4c5e1f0a9b8d…" of pod ns/web (container app) not found in DIR on node "n1": is the helper running on the target's node with hostPID?`,
		},
		{
			name:   "no node in the request",
			target: wire.Target{Namespace: "ns", Pod: "web", Container: "app", ContainerID: "docker://abc123abc123"},
			want:   `container "abc123abc123" of pod ns/web (container app) not found in DIR: is the helper running on the target's node with hostPID?`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeProc(t, dir, bystanders)
			_, err := Resolve(dir, tt.target)
			var nf *NotFoundError
			if !errors.As(err, &nf) {
				t.Fatalf("Resolve error %v, want a NotFoundError", err)
			}
			if diff := cmp.Diff(strings.ReplaceAll(tt.want, "DIR", dir), err.Error()); diff != "" {
				t.Errorf("error mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// vanishingFS fails like /proc does for a process that exits between two
// reads: ESRCH on the listed paths.
type vanishingFS struct {
	fs.FS
	gone map[string]bool
}

func (v vanishingFS) Open(name string) (fs.File, error) {
	if v.gone[name] {
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.ESRCH}
	}
	return v.FS.Open(name)
}

func TestResolveVanishingESRCH(t *testing.T) {
	path := "/kubepods/pod" + podUID + "/" + id
	proc := vanishingFS{
		FS: fstest.MapFS{
			"10/cgroup":   {Data: []byte(v2(path))},
			"10/task/10":  {Mode: fs.ModeDir},
			"11/cgroup":   {Data: []byte(v2(path))},
			"11/task/11":  {Mode: fs.ModeDir},
			"12/cgroup":   {Data: []byte(v2(path))},
			"12/task/12":  {Mode: fs.ModeDir},
			"self/cgroup": {Data: []byte("0::/\n")},
		},
		gone: map[string]bool{"11/task": true, "12/cgroup": true},
	}
	got, err := resolveFS(proc, target("containerd://"+id))
	if err != nil {
		t.Fatalf("resolveFS: %v", err)
	}
	want := attach.Target{
		Target: target("containerd://" + id), Method: attach.MethodProcCgroup,
		PIDs: []int{10}, TIDs: []int{10}, Cgroups: []attach.Cgroup{{Path: path}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("resolveFS mismatch (-want +got):\n%s", diff)
	}
}

func TestContainerPath(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		want   string
		wantOK bool
	}{
		{name: "bare id", path: "/kubepods/pod/" + id, want: "/kubepods/pod/" + id, wantOK: true},
		{name: "scope unit", path: "/a.slice/cri-containerd-" + id + ".scope", want: "/a.slice/cri-containerd-" + id + ".scope", wantOK: true},
		{name: "sub-cgroup cut", path: "/a/" + id + "/b/c", want: "/a/" + id, wantOK: true},
		{name: "longer id", path: "/a/" + id + "0"},
		{name: "prefixed id", path: "/a/f" + id},
		{name: "conmon", path: "/a/crio-conmon-" + id + ".scope"},
		{name: "near miss then match", path: "/a/" + nearPre + "/" + id, want: "/a/" + nearPre + "/" + id, wantOK: true},
		{name: "root", path: "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := containerPath(tt.path, id)
			if ok != tt.wantOK || got != tt.want {
				t.Errorf("containerPath(%q) = %q, %v; want %q, %v", tt.path, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
