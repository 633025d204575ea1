//go:build linux

package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// mounted is a file system the harness mounted, to be unmounted again.
type mounted struct{ dir string }

// mountTemp mounts fstype with options on a new temporary directory.
func mountTemp(fstype, options string) (*mounted, error) {
	dir, err := os.MkdirTemp("", "ktrace-testenv-"+fstype+"-")
	if err != nil {
		return nil, err
	}
	if err := unix.Mount("none", dir, fstype, unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, options); err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("mounting %s (%s) on %s: %w (run as root)", fstype, options, dir, err)
	}
	return &mounted{dir: dir}, nil
}

// unmount undoes mountTemp. A mount still in use (a session of another
// test binary found it) is detached, and goes when the last user does.
func (m *mounted) unmount() error {
	if err := unix.Unmount(m.dir, 0); err != nil {
		if err := unix.Unmount(m.dir, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmounting %s: %w", m.dir, err)
		}
	}
	return os.Remove(m.dir)
}

// Tracefs mounts a tracefs of the test's own and returns where; cleanup
// unmounts it. Every tracefs mount shows the same instances, so a test
// sees what any session did without relying on the machine's mounts.
func Tracefs(t testing.TB) string {
	t.Helper()
	m, err := mountTemp("tracefs", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.unmount(); err != nil {
			t.Errorf("unmounting the test's tracefs: %v", err)
		}
	})
	return m.dir
}

// Instances lists the tracefs instances whose name starts with prefix,
// through a tracefs mount of its own.
func Instances(t testing.TB, prefix string) []string {
	t.Helper()
	m, err := mountTemp("tracefs", "")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := m.unmount(); err != nil {
			t.Errorf("unmounting the test's tracefs: %v", err)
		}
	}()
	return instancesIn(t, m.dir, prefix)
}

// InstancesIn lists the instances whose name starts with prefix under the
// tracefs mount at tracefs.
func InstancesIn(t testing.TB, tracefs, prefix string) []string {
	t.Helper()
	return instancesIn(t, tracefs, prefix)
}

func instancesIn(t testing.TB, tracefs, prefix string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(tracefs, "instances"))
	if err != nil {
		t.Fatalf("listing tracefs instances: %v", err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}
