//go:build linux

package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// Container is a fake container: a cgroup in every hierarchy the calling
// process is in, below the process's own cgroup there, whose leaf is named
// by ID, a random 64-hex container id.
type Container struct {
	// ID is the container id, without a runtime scheme.
	ID     string
	leaves map[string]string // leaf directory by controllers ("" for v2)
	tops   []string          // the parents, removed after the leaves
	mounts []*mounted        // hierarchies mounted for the container
}

// hierarchy is one line of /proc/self/cgroup.
type hierarchy struct {
	controllers string // "memory", "cpu,cpuacct", "name=systemd", "" for v2
	path        string // the process's cgroup in it
}

// NewContainer makes a fake container; cleanup removes it once its
// processes are gone.
func NewContainer(t testing.TB) *Container {
	t.Helper()
	c, err := MakeContainer("ktrace-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Remove(); err != nil {
			t.Error(err)
		}
	})
	return c
}

// MakeContainer makes a fake container whose parent cgroups are named
// prefix and the id's first 8 characters. Remove removes it.
func MakeContainer(prefix string) (*Container, error) {
	b := make([]byte, 32)
	rand.Read(b)
	c := &Container{ID: hex.EncodeToString(b), leaves: map[string]string{}}
	hs, err := ownHierarchies()
	if err != nil {
		return nil, err
	}
	top := prefix + c.ID[:8]
	for _, h := range hs {
		root, err := c.mountOf(h.controllers)
		if err == nil {
			err = c.makeIn(root, h, top)
		}
		if err != nil {
			return nil, errors.Join(err, c.Remove())
		}
	}
	if len(c.leaves) == 0 {
		return nil, errors.Join(errors.New("making a fake container: /proc/self/cgroup lists no hierarchy"), c.Remove())
	}
	return c, nil
}

// ownHierarchies reads /proc/self/cgroup.
func ownHierarchies() ([]hierarchy, error) {
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	var hs []hierarchy
	for _, line := range strings.Split(strings.TrimSpace(string(own)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 {
			hs = append(hs, hierarchy{controllers: parts[1], path: parts[2]})
		}
	}
	return hs, nil
}

// mountOf returns where the hierarchy of controllers is mounted, and
// mounts it for the container where nothing did.
func (c *Container) mountOf(controllers string) (string, error) {
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return "", err
	}
	if dir := cgroupMount(string(mounts), controllers); dir != "" {
		return dir, nil
	}
	fstype, options := "cgroup2", ""
	if controllers != "" {
		fstype, options = "cgroup", controllers
		if strings.HasPrefix(controllers, "name=") {
			options = "none," + controllers
		}
	}
	m, err := mountTemp(fstype, options)
	if err != nil {
		return "", fmt.Errorf("the cgroup hierarchy %q is not mounted, and mounting it failed: %w", controllers, err)
	}
	c.mounts = append(c.mounts, m)
	return m.dir, nil
}

// cgroupMount returns the mount point of the hierarchy with the given
// controllers ("" is cgroup v2), from the text of /proc/self/mounts.
func cgroupMount(mounts, controllers string) string {
	for _, line := range strings.Split(mounts, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		if controllers == "" {
			if f[2] == "cgroup2" {
				return f[1]
			}
			continue
		}
		if f[2] != "cgroup" {
			continue
		}
		opts := strings.Split(f[3], ",")
		all := true
		for _, c := range strings.Split(controllers, ",") {
			all = all && slices.Contains(opts, c)
		}
		if all {
			return f[1]
		}
	}
	return ""
}

// makeIn makes the container's parent and leaf below h's path in the
// hierarchy mounted at root.
func (c *Container) makeIn(root string, h hierarchy, top string) error {
	parent := filepath.Join(root, h.path, top)
	leaf := filepath.Join(parent, c.ID)
	for _, d := range []string{parent, leaf} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return fmt.Errorf("making cgroup: %w", err)
		}
		if d == parent {
			c.tops = append(c.tops, d)
		} else {
			c.leaves[h.controllers] = d
		}
		if slices.Contains(strings.Split(h.controllers, ","), "cpuset") {
			// A v1 cpuset cgroup takes no process before it has cpus and
			// mems: copy the parent's.
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				v, err := os.ReadFile(filepath.Join(filepath.Dir(d), f))
				if err == nil {
					err = os.WriteFile(filepath.Join(d, f), v, 0)
				}
				if err != nil {
					return fmt.Errorf("setting %s of %s: %w", f, d, err)
				}
			}
		}
	}
	return nil
}

// Hierarchies returns how many hierarchies the container has a cgroup in.
func (c *Container) Hierarchies() int { return len(c.leaves) }

// Dir returns the container's directory in the hierarchy that has
// controller ("memory"), or in cgroup v2 for "".
func (c *Container) Dir(t testing.TB, controller string) string {
	t.Helper()
	for ctrls, d := range c.leaves {
		if controller == "" && ctrls == "" {
			return d
		}
		if controller != "" && slices.Contains(strings.Split(ctrls, ","), controller) {
			return d
		}
	}
	t.Fatalf("fake container has no cgroup with controller %q", controller)
	return ""
}

// Add moves a process into the container's cgroups.
func (c *Container) Add(t testing.TB, pid int) {
	t.Helper()
	if err := c.AddPID(pid); err != nil {
		t.Fatal(err)
	}
}

// AddPID moves a process into the container's cgroups.
func (c *Container) AddPID(pid int) error {
	for _, d := range c.leaves {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("moving pid %d into %s: %w", pid, d, err)
		}
	}
	return nil
}

// SetMemoryLimit sets the container's v1 memory limit.
func (c *Container) SetMemoryLimit(t testing.TB, bytes int64) {
	t.Helper()
	f := filepath.Join(c.Dir(t, "memory"), "memory.limit_in_bytes")
	if err := os.WriteFile(f, []byte(strconv.FormatInt(bytes, 10)), 0); err != nil {
		t.Fatalf("setting %s: %v", f, err)
	}
}

// Target is the container as the plugin would describe it.
func (c *Container) Target() wire.Target {
	return wire.Target{Node: "n1", Namespace: "test", Pod: "kt-" + c.ID[:6], PodUID: "uid-" + c.ID[:6],
		Container: "app", ContainerID: "containerd://" + c.ID}
}

// Remove deletes the cgroups once their processes are gone, and unmounts
// the hierarchies mounted for them.
func (c *Container) Remove() error {
	var errs []error
	leaves := make([]string, 0, len(c.leaves))
	for _, d := range c.leaves {
		leaves = append(leaves, d)
	}
	for _, d := range append(leaves, c.tops...) {
		if err := rmdirWait(d); err != nil {
			errs = append(errs, fmt.Errorf("removing cgroup %s: %w", d, err))
		}
	}
	for _, m := range c.mounts {
		if err := m.unmount(); err != nil {
			errs = append(errs, err)
		}
	}
	c.leaves, c.tops, c.mounts = nil, nil, nil
	return errors.Join(errs...)
}

// rmdirWait removes an empty cgroup, waiting up to 3 s for the processes
// still exiting from it.
func rmdirWait(d string) error {
	deadline := time.Now().Add(3 * time.Second)
	for {
		err := unix.Rmdir(d)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
