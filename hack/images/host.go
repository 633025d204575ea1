package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// findHost returns the first of /usr/sbin, /usr/bin, /sbin, /bin holding an
// executable called name. It does not resolve symlinks: copyHost mirrors
// them into the image.
func findHost(name string) (string, error) {
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q not found on this host (install it: hack/cluster/build.sh apt)", name)
}

// sharedLibs runs ldd on each binary and returns the union of the shared
// libraries and dynamic loaders it lists, as the paths ldd prints them,
// sorted. Static binaries contribute nothing.
func sharedLibs(bins ...string) ([]string, error) {
	seen := map[string]bool{}
	for _, bin := range bins {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command("ldd", bin)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		out := stdout.String() + stderr.String()
		if strings.Contains(out, "not a dynamic executable") || strings.Contains(out, "statically linked") {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ldd %q: %w: %s", bin, err, strings.TrimSpace(out))
		}
		libs, err := parseLdd(stdout.String())
		if err != nil {
			return nil, fmt.Errorf("ldd %q: %w", bin, err)
		}
		for _, l := range libs {
			seen[l] = true
		}
	}
	libs := make([]string, 0, len(seen))
	for l := range seen {
		libs = append(libs, l)
	}
	sort.Strings(libs)
	return libs, nil
}

// parseLdd extracts the library paths from ldd output such as
//
//	linux-vdso.so.1 (0x00007ffd...)
//	libpcap.so.0.8 => /lib/x86_64-linux-gnu/libpcap.so.0.8 (0x00007f...)
//	/lib64/ld-linux-x86-64.so.2 (0x00007f...)
func parseLdd(out string) ([]string, error) {
	var libs []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if name, target, ok := strings.Cut(line, "=>"); ok {
			fields := strings.Fields(target)
			if len(fields) == 0 || fields[0] == "not" {
				return nil, fmt.Errorf("library %q not found", strings.TrimSpace(name))
			}
			if strings.HasPrefix(fields[0], "/") {
				libs = append(libs, fields[0])
			}
			continue
		}
		if f := strings.Fields(line)[0]; strings.HasPrefix(f, "/") {
			libs = append(libs, f)
		}
	}
	return libs, sc.Err()
}

// userLine returns the line for name from the host's /etc/passwd or
// /etc/group, or fallback when the host has none.
func userLine(file, name, fallback string) string {
	data, err := os.ReadFile(file)
	if err == nil {
		for line := range strings.Lines(string(data)) {
			if strings.HasPrefix(line, name+":") {
				return strings.TrimRight(line, "\n")
			}
		}
	}
	return fallback
}

// copyHostTree adds the host directory dir and everything below it, if the
// host has it.
func (l *layer) copyHostTree(dir string) error {
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return l.copyHost(p)
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
