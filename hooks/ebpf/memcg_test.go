package ebpf

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ktrace-dev/kubectl-trace/hooks/attach"
)

func TestMemCgroupDirs(t *testing.T) {
	got := memCgroupDirs("/host/proc", []attach.Cgroup{
		{Controllers: "cpu,cpuacct", Path: "/kubepods/pod1/abc"},
		{Controllers: "memory", Path: "/kubepods/pod1/abc"},
		{Controllers: "", Path: "/"},
	})
	want := []string{"/sys/fs/cgroup/memory/kubepods/pod1/abc", "/host/proc/1/root/sys/fs/cgroup/memory/kubepods/pod1/abc"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("memCgroupDirs, cgroup v1 (-want +got):\n%s", diff)
	}
	got = memCgroupDirs("/proc", []attach.Cgroup{{Controllers: "", Path: "/kubepods.slice/x.scope"}})
	want = []string{"/sys/fs/cgroup/kubepods.slice/x.scope", "/sys/fs/cgroup/unified/kubepods.slice/x.scope",
		"/proc/1/root/sys/fs/cgroup/kubepods.slice/x.scope", "/proc/1/root/sys/fs/cgroup/unified/kubepods.slice/x.scope"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("memCgroupDirs, cgroup v2 (-want +got):\n%s", diff)
	}
}
