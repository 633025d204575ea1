//go:build linux

// Package testenv is the one harness of the privileged tests and of the
// bench: it makes, on the real kernel, everything a test traces and every
// piece of kernel state the test reads, and removes it again.
//
//   - Container: a fake container, a cgroup in every hierarchy the test
//     process is in, whose leaf is named by a random 64-hex container id
//     as a runtime's cgroupfs driver makes them, so that the helper's
//     /proc resolution finds it; cgroup v1, v2 and hybrid nodes alike. A
//     hierarchy that the process is in but that nothing mounted is mounted
//     for the container, and unmounted with it.
//   - Tracefs: a tracefs mount of the test's own (every tracefs mount shows
//     the same instances), so that no test depends on a mount the machine
//     happens to have.
//   - Start: a worker process that does one kind of work (Work) on a
//     signal, in new namespaces when asked; StartLoop, a shell loop under
//     a name of its own; StartPeer, a network peer in a network namespace
//     of its own; NewPIDNamespace, a child pid namespace with its proc.
//   - OurPrograms and friends: what BPF programs the machine has loaded.
//
// Workers, peers and the child pid namespace's processes are the test
// binary itself, run again in a role (named by an environment variable): a
// package that starts them calls Main first, from an init function or
// TestMain, which plays the role and exits when the binary was started as
// one.
//
// Functions that take a testing.TB fail the test and register their
// cleanup; the bench uses the ones that return errors.
package testenv
