// Package debian fetches Debian packages, with everything they depend on,
// for any architecture the archive carries, and unpacks them into a
// directory: the one way the project takes tools from Debian for an image
// or a VM that is not this machine (the release image's tcpdump for arm64,
// a VM's kernel and its modules).
//
// apt resolves the dependency closure as if nothing were installed (an
// empty dpkg status file), so the result does not depend on what this
// machine happens to have. Packages are kept in a pool per architecture
// under the cache directory, named by their version: a second fetch of the
// same versions downloads nothing, and a Debian update fetches only what
// changed.
package debian

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// NativeArch is this machine's architecture in Debian's names.
func NativeArch() string {
	switch runtime.GOARCH {
	case "amd64", "arm64":
		return runtime.GOARCH
	case "arm":
		return "armhf"
	}
	return runtime.GOARCH
}

// ArchOf maps a Go GOARCH to Debian's architecture name.
func ArchOf(goarch string) (string, error) {
	switch goarch {
	case "amd64", "arm64":
		return goarch, nil
	}
	return "", fmt.Errorf("architecture %q: only amd64 and arm64 are built", goarch)
}

// EnsureArch makes apt know arch's package lists: for a foreign
// architecture it adds it to dpkg (as `dpkg --add-architecture`) and
// updates the lists once. It needs root the first time for each
// architecture, and changes nothing when the architecture is known.
func EnsureArch(ctx context.Context, arch string) error {
	if arch == NativeArch() {
		return nil
	}
	out, err := exec.CommandContext(ctx, "dpkg", "--print-foreign-architectures").Output()
	if err != nil {
		return fmt.Errorf("listing dpkg's foreign architectures: %w", err)
	}
	if slices.Contains(strings.Fields(string(out)), arch) {
		return nil
	}
	if err := run(ctx, "dpkg", "--add-architecture", arch); err != nil {
		return fmt.Errorf("adding architecture %q to dpkg (needs root): %w", arch, err)
	}
	if err := run(ctx, "apt-get", "update", "-qq"); err != nil {
		return fmt.Errorf("updating apt's lists for %q: %w", arch, err)
	}
	return nil
}

// Fetch resolves pkgs (names without an architecture suffix) for arch with
// their whole dependency closure and returns the .deb files, downloading
// into cacheDir/debs/<arch> only the ones not there yet. Recommends are
// left out, as in the project's images.
func Fetch(ctx context.Context, arch, cacheDir string, pkgs ...string) ([]string, error) {
	if len(pkgs) == 0 {
		return nil, errors.New("no packages to fetch")
	}
	if err := EnsureArch(ctx, arch); err != nil {
		return nil, err
	}
	pool := filepath.Join(cacheDir, "debs", arch)
	if err := os.MkdirAll(filepath.Join(pool, "partial"), 0o755); err != nil {
		return nil, fmt.Errorf("creating package pool: %w", err)
	}
	want, err := resolve(ctx, arch, pool, pkgs)
	if err != nil {
		return nil, err
	}
	var missing, files []string
	for _, name := range want {
		p := filepath.Join(pool, name)
		files = append(files, p)
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		args := append(aptArgs(pool, "--download-only"), qualified(arch, pkgs)...)
		if err := run(ctx, "apt-get", args...); err != nil {
			return nil, fmt.Errorf("downloading %s for %s: %w", strings.Join(pkgs, " "), arch, err)
		}
		for _, p := range files {
			if _, err := os.Stat(p); err != nil {
				return nil, fmt.Errorf("apt-get did not download %s for %s", filepath.Base(p), arch)
			}
		}
	}
	return files, nil
}

// resolve asks apt which files the closure of pkgs is, as file names in
// the pool. An empty archives directory makes apt list every file, also
// those the pool already holds.
func resolve(ctx context.Context, arch, pool string, pkgs []string) ([]string, error) {
	empty, err := os.MkdirTemp(pool, "resolve-")
	if err != nil {
		return nil, fmt.Errorf("resolving packages: %w", err)
	}
	defer os.RemoveAll(empty)
	if err := os.Mkdir(filepath.Join(empty, "partial"), 0o755); err != nil {
		return nil, fmt.Errorf("resolving packages: %w", err)
	}
	args := append(aptArgs(empty, "--print-uris"), qualified(arch, pkgs)...)
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "apt-get", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("resolving %s for %s with apt-get: %w: %s", strings.Join(pkgs, " "), arch, err, strings.TrimSpace(stderr.String()))
	}
	names, err := ParseURIs(stdout.String())
	if err != nil {
		return nil, fmt.Errorf("resolving %s for %s: %w", strings.Join(pkgs, " "), arch, err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("resolving %s for %s: apt-get listed no files", strings.Join(pkgs, " "), arch)
	}
	return names, nil
}

// aptArgs are apt-get's options for a machine with nothing installed,
// downloading into archives; mode is --print-uris or --download-only.
func aptArgs(archives, mode string) []string {
	return []string{
		"-q", "-y", mode, "--no-install-recommends",
		"-o", "Dir::State::status=/dev/null",
		"-o", "Dir::Cache::archives=" + archives,
		// Downloading into a directory of ours takes no lock of dpkg's:
		// several fetches and an apt-get install may run at once.
		"-o", "Debug::NoLocking=1",
		"install",
	}
}

func qualified(arch string, pkgs []string) []string {
	out := make([]string, len(pkgs))
	for i, p := range pkgs {
		out[i] = p + ":" + arch
	}
	return out
}

// ParseURIs returns the file names of apt-get --print-uris output, lines
// such as
//
//	'http://deb.debian.org/debian/pool/main/t/tcpdump/tcpdump_4.99.3-1_amd64.deb' tcpdump_4.99.3-1_amd64.deb 467168 MD5Sum:…
//
// sorted; other lines (apt's progress) are ignored.
func ParseURIs(out string) ([]string, error) {
	var names []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "'") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 || !strings.HasSuffix(f[1], ".deb") || strings.ContainsAny(f[1], "/\x00") {
			return nil, fmt.Errorf("unexpected line from apt-get --print-uris: %q", line)
		}
		names = append(names, f[1])
	}
	slices.Sort(names)
	return names, sc.Err()
}

// Unpack extracts the files of debs into dir, as dpkg-deb -x does (no
// maintainer scripts run).
func Unpack(ctx context.Context, dir string, debs ...string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	for _, d := range debs {
		if err := run(ctx, "dpkg-deb", "-x", d, dir); err != nil {
			return fmt.Errorf("unpacking %s: %w", filepath.Base(d), err)
		}
	}
	return nil
}

func run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, lastLines(out.String(), 5))
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "; ")
}
