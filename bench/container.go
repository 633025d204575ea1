//go:build linux

package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"golang.org/x/sys/unix"
)

// fakeContainer is what the helper's resolution takes for a container: a
// cgroup in every hierarchy this process is in, whose leaf is named by a
// random 64-hex container id, as a runtime's cgroupfs driver makes them
// (the privileged tests' fakeContainer and ebpftest.Container do the same).
type fakeContainer struct {
	id     string
	leaves []string
	tops   []string
}

func newFakeContainer() (*fakeContainer, error) {
	b := make([]byte, 32)
	rand.Read(b)
	c := &fakeContainer{id: hex.EncodeToString(b)}
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return nil, err
	}
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	top := "ktbench-" + c.id[:8]
	for _, line := range strings.Split(strings.TrimSpace(string(own)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		mnt := cgroupMount(string(mounts), parts[1])
		if mnt == "" {
			continue // a named hierarchy that is not mounted here
		}
		parent := filepath.Join(mnt, parts[2], top)
		leaf := filepath.Join(parent, c.id)
		for _, d := range []string{parent, leaf} {
			if err := os.Mkdir(d, 0o755); err != nil {
				c.remove()
				return nil, fmt.Errorf("making cgroup %s: %w", d, err)
			}
			if d == parent {
				c.tops = append(c.tops, d)
			} else {
				c.leaves = append(c.leaves, d)
			}
			if strings.Contains(","+parts[1]+",", ",cpuset,") {
				// A v1 cpuset cgroup takes no process before it has cpus and mems.
				for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
					v, err := os.ReadFile(filepath.Join(filepath.Dir(d), f))
					if err == nil {
						err = os.WriteFile(filepath.Join(d, f), v, 0)
					}
					if err != nil {
						c.remove()
						return nil, fmt.Errorf("setting %s of %s: %w", f, d, err)
					}
				}
			}
		}
	}
	if len(c.leaves) == 0 {
		return nil, errors.New("no cgroup hierarchy found in /proc/self/cgroup")
	}
	return c, nil
}

// cgroupMount returns the mount point of the hierarchy with the given
// controllers ("" is cgroup v2).
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
		opts := "," + f[3] + ","
		all := true
		for _, c := range strings.Split(controllers, ",") {
			all = all && strings.Contains(opts, ","+strings.TrimPrefix(c, "name=")+",")
		}
		if all {
			return f[1]
		}
	}
	return ""
}

// add moves a process into the container.
func (c *fakeContainer) add(pid int) error {
	for _, d := range c.leaves {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("moving pid %d into %s: %w", pid, d, err)
		}
	}
	return nil
}

// target is the container as the plugin would describe it.
func (c *fakeContainer) target() wire.Target {
	return wire.Target{Node: "bench", Namespace: "bench", Pod: "load-" + c.id[:6], PodUID: "uid-" + c.id[:6],
		Container: "load", ContainerID: "containerd://" + c.id}
}

// remove deletes the cgroups once their processes are gone.
func (c *fakeContainer) remove() {
	for _, dirs := range [][]string{c.leaves, c.tops} {
		for _, d := range dirs {
			var err error
			for range 150 {
				if err = unix.Rmdir(d); err == nil || errors.Is(err, unix.ENOENT) {
					err = nil
					break
				}
				time.Sleep(20 * time.Millisecond) // processes still exiting
			}
			if err != nil {
				logf("removing cgroup %s: %v", d, err)
			}
		}
	}
}
