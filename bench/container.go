//go:build linux

package main

import (
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"github.com/ktrace-dev/kubectl-trace/test/testenv"
)

// fakeContainer is what the helper's resolution takes for a container: the
// privileged tests' fake container (package testenv), named for the bench.
type fakeContainer struct{ c *testenv.Container }

func newFakeContainer() (*fakeContainer, error) {
	c, err := testenv.MakeContainer("ktbench-")
	if err != nil {
		return nil, err
	}
	return &fakeContainer{c: c}, nil
}

// add moves a process into the container.
func (c *fakeContainer) add(pid int) error { return c.c.AddPID(pid) }

// target is the container as the plugin would describe it.
func (c *fakeContainer) target() wire.Target {
	id := c.c.ID
	return wire.Target{Node: "bench", Namespace: "bench", Pod: "load-" + id[:6], PodUID: "uid-" + id[:6],
		Container: "load", ContainerID: "containerd://" + id}
}

// remove deletes the cgroups once their processes are gone.
func (c *fakeContainer) remove() {
	if err := c.c.Remove(); err != nil {
		logf("removing the fake container: %v", err)
	}
}
