package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Image references of the images built here besides the tracer (whose tag
// is a flag). The test cluster's containerd uses pauseRef as sandbox image.
const (
	pauseRef    = "ktrace.local/pause:v1"
	workloadRef = "ktrace.local/workload:v1"
	modulePath  = "github.com/ktrace-dev/kubectl-trace"
)

// workloadNames are the names the workload image links to /workload; each
// gives a pod's process a distinctive comm.
var workloadNames = []string{"ktalpha", "ktbravo", "ktdemo", "ktnoise"}

// tracerTools are the host programs copied into the tracer image, from the
// Debian packages tcpdump, util-linux and iproute2, as in
// tracer-image/Dockerfile.
var tracerTools = []string{"tcpdump", "nsenter", "ip", "ss", "tc"}

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/bin/busybox-applets"

// spec describes one image: a single layer plus its entrypoint.
type spec struct {
	ref        string
	layer      *layer
	entrypoint []string
}

// image assembles the spec into a single-layer linux image for the host's
// architecture, with fixed timestamps.
func (s spec) image() (v1.Image, error) {
	data, err := s.layer.tar()
	if err != nil {
		return nil, err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
	if err != nil {
		return nil, err
	}
	cfg := &v1.ConfigFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Created:      v1.Time{Time: epoch},
		Config: v1.Config{
			Entrypoint: s.entrypoint,
			Env:        []string{defaultPath},
			WorkingDir: "/",
			Labels:     map[string]string{"org.opencontainers.image.source": "https://" + modulePath},
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	img, err := mutate.ConfigFile(empty.Image, cfg)
	if err != nil {
		return nil, err
	}
	return mutate.Append(img, mutate.Addendum{
		Layer:   l,
		History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "go run ./hack/images", Comment: s.ref},
	})
}

// write saves the image as a docker-archive tarball at path, the format
// `ctr images import` reads, and returns its manifest digest.
func (s spec) write(path string) (v1.Hash, error) {
	img, err := s.image()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("building %s: %w", s.ref, err)
	}
	tag, err := name.NewTag(s.ref, name.StrictValidation)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("image reference %q: %w", s.ref, err)
	}
	tmp := path + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		os.Remove(tmp)
		return v1.Hash{}, fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return v1.Hash{}, err
	}
	return img.Digest()
}

// goBuild compiles a package of this module into a static binary for linux
// and the host architecture, reproducibly (no VCS stamp, no build id, paths
// trimmed).
func goBuild(pkg, out string) error {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("go toolchain not in PATH: %w", err)
	}
	cmd := exec.Command(gobin, "build", "-trimpath", "-buildvcs=false",
		"-ldflags=-s -w -buildid=", "-o", out, modulePath+"/"+pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// pauseSpec: the static pause program as /pause.
func pauseSpec(pauseBin string) (spec, error) {
	l := newLayer()
	if err := l.copyFile("/pause", pauseBin); err != nil {
		return spec{}, err
	}
	return spec{ref: pauseRef, layer: l, entrypoint: []string{"/pause"}}, nil
}

// workloadSpec: /workload, the kt* links to it, and busybox with its applets
// in /bin for debugging.
func workloadSpec(workloadBin, busybox string) (spec, error) {
	l := newLayer()
	steps := []func() error{
		func() error { return l.copyFile("/workload", workloadBin) },
		func() error { return l.dir("/tmp", 0o1777) },
		func() error { return l.copyFile("/bin/busybox", busybox) },
	}
	for _, n := range workloadNames {
		steps = append(steps, func() error { return l.symlink("/usr/bin/"+n, "/workload") })
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return spec{}, err
		}
	}
	applets, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return spec{}, fmt.Errorf("listing busybox applets: %w", err)
	}
	for _, a := range strings.Fields(string(applets)) {
		if a == "busybox" || strings.Contains(a, "/") {
			continue
		}
		if err := l.symlink("/bin/"+a, "busybox"); err != nil {
			return spec{}, err
		}
	}
	return spec{ref: workloadRef, layer: l, entrypoint: []string{"/workload"}}, nil
}

// tracerSpec: the tracer binary plus tcpdump, nsenter, ip, ss and tc from
// the host with the shared libraries ldd lists, mirroring the host's
// symlinks (usr-merge, loader), and users root and tcpdump (tcpdump drops
// privileges to it).
func tracerSpec(ref, tracerBin, busybox string) (spec, error) {
	l := newLayer()
	if err := l.copyFile("/usr/local/bin/tracer", tracerBin); err != nil {
		return spec{}, fmt.Errorf("tracer binary: %w", err)
	}
	var bins []string
	for _, t := range tracerTools {
		p, err := findHost(t)
		if err != nil {
			return spec{}, err
		}
		bins = append(bins, p)
	}
	libs, err := sharedLibs(bins...)
	if err != nil {
		return spec{}, err
	}
	// usr-merged hosts: /bin, /sbin, /lib, /lib64 are symlinks into /usr.
	for _, p := range append(append([]string{"/bin", "/sbin", "/lib", "/lib64"}, bins...), libs...) {
		if _, err := os.Lstat(p); os.IsNotExist(err) && !strings.Contains(p, ".so") && !slices.Contains(bins, p) {
			continue // e.g. no /lib64 on this host
		}
		if err := l.copyHost(p); err != nil {
			return spec{}, err
		}
	}
	// A shell and the small tools (sh, cat, wget, nc, …) for `kubectl trace
	// exec`; the real tools above keep their names.
	if err := l.copyFile("/usr/local/bin/busybox", busybox); err != nil {
		return spec{}, err
	}
	applets, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return spec{}, fmt.Errorf("listing busybox applets: %w", err)
	}
	for _, a := range strings.Fields(string(applets)) {
		if a == "busybox" || strings.Contains(a, "/") || slices.Contains(tracerTools, a) {
			continue
		}
		if _, err := os.Lstat(filepath.Join("/usr/bin", a)); err == nil && slices.Contains(bins, filepath.Join("/usr/bin", a)) {
			continue
		}
		if err := l.symlink("/usr/local/bin/busybox-applets/"+a, "../busybox"); err != nil {
			return spec{}, err
		}
	}
	for _, dir := range []string{"/etc/iproute2"} {
		if err := l.copyHostTree(dir); err != nil {
			return spec{}, err
		}
	}
	for _, f := range []string{"/etc/protocols", "/etc/services"} {
		if _, err := os.Stat(f); err == nil {
			if err := l.copyFile(f, f); err != nil {
				return spec{}, err
			}
		}
	}
	passwd := "root:x:0:0:root:/root:/bin/sh\n" +
		userLine("/etc/passwd", "tcpdump", "tcpdump:x:104:108::/nonexistent:/usr/sbin/nologin") + "\n"
	group := "root:x:0:\n" + userLine("/etc/group", "tcpdump", "tcpdump:x:108:") + "\n"
	files := []struct {
		path string
		data string
	}{
		{"/etc/passwd", passwd},
		{"/etc/group", group},
		{"/etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n"},
	}
	for _, f := range files {
		if err := l.file(f.path, 0o644, []byte(f.data)); err != nil {
			return spec{}, err
		}
	}
	for _, d := range []string{"/proc", "/sys", "/dev", "/root"} {
		if err := l.dir(d, 0o755); err != nil {
			return spec{}, err
		}
	}
	if err := l.dir("/tmp", 0o1777); err != nil {
		return spec{}, err
	}
	return spec{ref: ref, layer: l, entrypoint: []string{"/usr/local/bin/tracer"}}, nil
}

// buildAll writes pause.tar, workload.tar and, if tracerBin is set,
// tracer.tar into out, and returns the written files with their digests.
func buildAll(out, tracerBin, tracerRef, busybox string) ([]string, error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "ktrace-images-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	pauseBin, workloadBin := filepath.Join(tmp, "pause"), filepath.Join(tmp, "workload")
	if err := goBuild("hack/images/pause", pauseBin); err != nil {
		return nil, err
	}
	if err := goBuild("hack/images/workload", workloadBin); err != nil {
		return nil, err
	}
	type job struct {
		file  string
		build func() (spec, error)
	}
	jobs := []job{
		{"pause.tar", func() (spec, error) { return pauseSpec(pauseBin) }},
		{"workload.tar", func() (spec, error) { return workloadSpec(workloadBin, busybox) }},
	}
	if tracerBin != "" {
		jobs = append(jobs, job{"tracer.tar", func() (spec, error) { return tracerSpec(tracerRef, tracerBin, busybox) }})
	}
	var written []string
	for _, j := range jobs {
		s, err := j.build()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", j.file, err)
		}
		path := filepath.Join(out, j.file)
		d, err := s.write(path)
		if err != nil {
			return nil, err
		}
		written = append(written, fmt.Sprintf("%s\t%s\t%s", path, s.ref, d))
	}
	return written, nil
}
