package runner

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ktrace-dev/kubectl-trace/hooks/attach"
)

func TestMembers(t *testing.T) {
	cpath := "/kubepods/besteffort/pod" + podUID + "/" + id
	spath := "/kubepods.slice/" + podSlice + "/cri-containerd-" + id + ".scope"
	// Processes of the fake node: 4242 (two threads), 4300, 4400; 4500 has
	// exited (no task directory). The container's processes per /proc are
	// 4242 and 4300.
	procs := []fakeProc{
		{pid: 4242, cgroup: v1(cpath, "/"), tids: []int{4242, 4250}},
		{pid: 4300, cgroup: v1(cpath, "/"), tids: []int{4300}},
		{pid: 4400, cgroup: v1("/", "/"), tids: []int{4400}},
	}
	tests := []struct {
		name       string
		cgroupRoot string // "CG" is the test's cgroup root
		cgroups    []attach.Cgroup
		files      map[string]string // under the test's directory
		want       Membership        // "DIR" in Source is the test's directory
		wantErr    bool
	}{
		{
			name:       "cgroup v1 memory, with a sub-cgroup and an exited process",
			cgroupRoot: "CG",
			cgroups:    []attach.Cgroup{{Controllers: "memory", Path: cpath}},
			files: map[string]string{
				"cg/memory" + cpath + "/cgroup.procs":        "4242\n4300\n4500\n",
				"cg/memory" + cpath + "/worker/cgroup.procs": "4400\n",
			},
			want: Membership{PIDs: []int{4242, 4300, 4400}, TIDs: []int{4242, 4250, 4300, 4400}, Source: "DIR/cg/memory" + cpath},
		},
		{
			name:       "cgroup v1 cpu,cpuacct mounted under its joined name",
			cgroupRoot: "CG",
			cgroups:    []attach.Cgroup{{Controllers: "cpu,cpuacct", Path: cpath}},
			files:      map[string]string{"cg/cpu,cpuacct" + cpath + "/cgroup.procs": "4300\n"},
			want:       Membership{PIDs: []int{4300}, TIDs: []int{4300}, Source: "DIR/cg/cpu,cpuacct" + cpath},
		},
		{
			name:       "cgroup v1 name=systemd",
			cgroupRoot: "CG",
			cgroups:    []attach.Cgroup{{Controllers: "name=systemd", Path: spath}},
			files:      map[string]string{"cg/systemd" + spath + "/cgroup.procs": "4242\n"},
			want:       Membership{PIDs: []int{4242}, TIDs: []int{4242, 4250}, Source: "DIR/cg/systemd" + spath},
		},
		{
			name:       "cgroup v2 unified node",
			cgroupRoot: "CG",
			cgroups:    []attach.Cgroup{{Path: spath}},
			files:      map[string]string{"cg" + spath + "/cgroup.procs": "4242\n4300\n"},
			want:       Membership{PIDs: []int{4242, 4300}, TIDs: []int{4242, 4250, 4300}, Source: "DIR/cg" + spath},
		},
		{
			name:       "cgroup v2 on a hybrid node",
			cgroupRoot: "CG",
			cgroups:    []attach.Cgroup{{Path: spath}},
			files:      map[string]string{"cg/unified" + spath + "/cgroup.procs": "4242\n"},
			want:       Membership{PIDs: []int{4242}, TIDs: []int{4242, 4250}, Source: "DIR/cg/unified" + spath},
		},
		{
			name:       "only the node's root through /proc/1/root",
			cgroupRoot: "/ktrace-test-no-such-cgroup-root",
			cgroups:    []attach.Cgroup{{Controllers: "memory", Path: cpath}},
			files: map[string]string{
				"proc/1/root/ktrace-test-no-such-cgroup-root/memory" + cpath + "/cgroup.procs": "4242\n",
			},
			want: Membership{PIDs: []int{4242}, TIDs: []int{4242, 4250}, Source: "DIR/proc/1/root/ktrace-test-no-such-cgroup-root/memory" + cpath},
		},
		{
			name:       "empty cgroup",
			cgroupRoot: "CG",
			cgroups:    []attach.Cgroup{{Controllers: "memory", Path: cpath}},
			files:      map[string]string{"cg/memory" + cpath + "/cgroup.procs": ""},
			want:       Membership{Source: "DIR/cg/memory" + cpath},
		},
		{
			name:       "no cgroup readable: /proc again",
			cgroupRoot: "CG",
			cgroups:    []attach.Cgroup{{Controllers: "memory", Path: cpath}},
			want:       Membership{PIDs: []int{4242, 4300}, TIDs: []int{4242, 4250, 4300}, Source: attach.MethodProcCgroup},
		},
		{
			name:       "path from another cgroup namespace: /proc again",
			cgroupRoot: "CG",
			cgroups:    []attach.Cgroup{{Path: "/../" + id}},
			files:      map[string]string{"cg/" + id + "/cgroup.procs": "4400\n"},
			want:       Membership{PIDs: []int{4242, 4300}, TIDs: []int{4242, 4250, 4300}, Source: attach.MethodProcCgroup},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			proc := filepath.Join(dir, "proc")
			writeProc(t, proc, procs)
			for name, content := range tt.files {
				mustWrite(t, filepath.Join(dir, name), content)
			}
			root := tt.cgroupRoot
			if root == "CG" {
				root = filepath.Join(dir, "cg")
			}
			r := attach.Target{Target: target("containerd://" + id), Method: attach.MethodProcCgroup, Cgroups: tt.cgroups}
			got, err := Members(proc, root, r)
			if err != nil {
				t.Fatalf("Members: %v", err)
			}
			tt.want.Source = strings.ReplaceAll(tt.want.Source, "DIR", dir)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Members mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMembersGone(t *testing.T) {
	dir := t.TempDir()
	writeProc(t, filepath.Join(dir, "proc"), bystanders)
	r := attach.Target{Target: target("containerd://" + id), Cgroups: []attach.Cgroup{{Controllers: "memory", Path: "/kubepods/" + id}}}
	_, err := Members(filepath.Join(dir, "proc"), filepath.Join(dir, "cg"), r)
	var nf *NotFoundError
	if !errors.As(err, &nf) {
		t.Errorf("Members error %v, want a NotFoundError", err)
	}
}
