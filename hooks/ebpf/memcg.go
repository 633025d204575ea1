package ebpf

import (
	"path/filepath"
	"slices"
	"strings"

	"github.com/ktrace-dev/kubectl-trace/hooks/attach"
)

// memCgroupDirs returns where the container's memory cgroup directory may
// be: the v1 memory hierarchy when the container is in one, else its
// cgroup v2 directory; under /sys/fs/cgroup, then under <procRoot>/1/root
// (the node's file system, seen from a hostPID helper).
func memCgroupDirs(procRoot string, cgs []attach.Cgroup) []string {
	const cgroupRoot = "/sys/fs/cgroup"
	var rel []string
	for _, c := range cgs {
		if strings.Contains(c.Path, "..") {
			continue // seen from another cgroup namespace
		}
		if slices.Contains(strings.Split(c.Controllers, ","), "memory") {
			rel = append(rel, filepath.Join("memory", c.Path))
		}
	}
	if len(rel) == 0 {
		for _, c := range cgs {
			if c.Controllers == "" && !strings.Contains(c.Path, "..") {
				rel = append(rel, c.Path, filepath.Join("unified", c.Path))
			}
		}
	}
	var dirs []string
	for _, root := range []string{cgroupRoot, filepath.Join(procRoot, "1", "root", cgroupRoot)} {
		for _, r := range rel {
			dirs = append(dirs, filepath.Join(root, r))
		}
	}
	return dirs
}
