//go:build linux

package ftrace

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// instancePrefix starts the name of every instance a session creates.
const instancePrefix = "kubectl-trace-"

// findTracefs returns where tracefs is mounted read-write, from mounts (the
// text of /proc/self/mounts), or "" when it is not. A debugfs mount with a
// tracing directory is the fallback of kernels older than 4.1.
func findTracefs(mounts string) string {
	var debugfs string
	sc := bufio.NewScanner(strings.NewReader(mounts))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || hasOption(f[3], "ro") {
			continue
		}
		dir := unescapeMount(f[1])
		switch f[2] {
		case "tracefs":
			if isDir(filepath.Join(dir, "instances")) {
				return dir
			}
		case "debugfs":
			if d := filepath.Join(dir, "tracing"); debugfs == "" && isDir(filepath.Join(d, "instances")) {
				debugfs = d
			}
		}
	}
	return debugfs
}

func hasOption(opts, o string) bool {
	for _, x := range strings.Split(opts, ",") {
		if x == o {
			return true
		}
	}
	return false
}

// unescapeMount undoes the octal escapes of /proc/self/mounts ("\040").
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// mountTracefs mounts a tracefs of its own in a new temporary directory.
func mountTracefs() (string, error) {
	dir, err := os.MkdirTemp("", "kubectl-trace-tracefs-")
	if err != nil {
		return "", fmt.Errorf("mounting tracefs: %w", err)
	}
	if err := unix.Mount("nodev", dir, "tracefs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		os.Remove(dir)
		return "", fmt.Errorf("mounting tracefs on %q: %w: the helper needs CAP_SYS_ADMIN, or the host's /sys/kernel/tracing mounted", dir, err)
	}
	return dir, nil
}

// unmountTracefs undoes mountTracefs.
func unmountTracefs(dir string) error {
	if err := unix.Unmount(dir, 0); err != nil {
		// Something still holds a file open: detach it now, the kernel
		// frees it when the last file is closed.
		if err2 := unix.Unmount(dir, unix.MNT_DETACH); err2 != nil {
			return fmt.Errorf("unmounting tracefs from %q: %w", dir, err)
		}
	}
	return os.Remove(dir)
}

// instanceName is the name of a session's instance. It carries the owner's
// pid and pid namespace so that a later session can tell an instance whose
// helper is gone (see removeStale).
func instanceName(session string, pidns uint64, pid int) string {
	clean := strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, session)
	return fmt.Sprintf("%s%s-%d-%d", instancePrefix, clean, pidns, pid)
}

// parseInstanceName returns the owner recorded by instanceName.
func parseInstanceName(name string) (pidns uint64, pid int, ok bool) {
	if !strings.HasPrefix(name, instancePrefix) {
		return 0, 0, false
	}
	rest, pidStr, ok1 := cutLast(name[len(instancePrefix):], "-")
	_, nsStr, ok2 := cutLast(rest, "-")
	if !ok1 || !ok2 {
		return 0, 0, false
	}
	ns, err1 := strconv.ParseUint(nsStr, 10, 64)
	p, err2 := strconv.Atoi(pidStr)
	if err1 != nil || err2 != nil || p <= 0 {
		return 0, 0, false
	}
	return ns, p, true
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// pidNamespace returns the inode of procRoot/self/ns/pid.
func pidNamespace(procRoot string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(procRoot, "self", "ns", "pid"), &st); err != nil {
		return 0, fmt.Errorf("reading pid namespace: %w", err)
	}
	return st.Ino, nil
}

// removeStale removes the instances left by sessions whose helper is gone:
// named by instanceName in our own pid namespace, for a pid that no longer
// exists. Instances of other pid namespaces are left alone: their pids mean
// nothing here. It returns the names it removed.
func removeStale(instances *os.Root, procRoot string, pidns uint64) ([]string, error) {
	entries, err := fs.ReadDir(instances.FS(), ".")
	if err != nil {
		return nil, fmt.Errorf("listing tracefs instances: %w", err)
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		ns, pid, ok := parseInstanceName(e.Name())
		if !ok || ns != pidns {
			continue
		}
		if _, err := os.Stat(filepath.Join(procRoot, strconv.Itoa(pid))); !errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := rmdirRetry(instances, e.Name(), 200*time.Millisecond); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, e.Name())
	}
	return removed, errors.Join(errs...)
}

// rmdirRetry removes an instance, retrying while the kernel reports it busy
// (a file of it is still open, for example by a reader that is closing).
func rmdirRetry(instances *os.Root, name string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := bareErr(instances.Remove(name))
		switch {
		case err == nil, errors.Is(err, unix.ENOENT):
			return nil
		case errors.Is(err, unix.EBUSY) && time.Now().Before(deadline):
			time.Sleep(10 * time.Millisecond)
		default:
			return fmt.Errorf("removing tracefs instance %q: %w", filepath.Join(instances.Name(), name), err)
		}
	}
}

// writeFile writes data to a file of a tracefs directory in one write. flag
// adds to O_WRONLY: O_TRUNC replaces a list (set_event, set_event_pid),
// O_APPEND adds to it. Errors carry the errno only: callers name the file.
func writeFile(dir *os.Root, name string, data string, flag int) error {
	f, err := dir.OpenFile(name, os.O_WRONLY|flag, 0)
	if err != nil {
		return bareErr(err)
	}
	_, err = f.WriteString(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return bareErr(err)
}

// bareErr strips the path an *os.PathError repeats.
func bareErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// cpuStats sums the loss counters of an instance's per_cpu/cpu*/stats:
// "overrun" (events overwritten before they were read), "commit overrun"
// and "dropped events" (events refused when the buffer does not
// overwrite).
func cpuStats(inst *os.Root) (lost uint64, err error) {
	cpus, err := fs.Glob(inst.FS(), "per_cpu/cpu*/stats")
	if err != nil || len(cpus) == 0 {
		return 0, fmt.Errorf("reading per-cpu stats of tracefs instance %q: none found", inst.Name())
	}
	for _, name := range cpus {
		b, err := inst.ReadFile(name)
		if err != nil {
			return lost, fmt.Errorf("reading %q of tracefs instance %q: %w", name, inst.Name(), bareErr(err))
		}
		lost += lostInStats(string(b))
	}
	return lost, nil
}

// lostInStats sums the loss counters of one per_cpu/cpuN/stats file.
func lostInStats(stats string) uint64 {
	var lost uint64
	for _, line := range strings.Split(stats, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "overrun", "commit overrun", "dropped events":
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			lost += n
		}
	}
	return lost
}
