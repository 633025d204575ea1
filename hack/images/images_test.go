package main

import (
	"archive/tar"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// needHost fails when this host lacks what the tracer image copies from it
// (Debian packages tcpdump, util-linux, iproute2 and busybox-static;
// hack/cluster/build.sh apt installs them).
func needHost(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ldd"); err != nil {
		t.Fatal("ldd not found: the tracer image needs a glibc host")
	}
	for _, tool := range tracerTools {
		if _, err := findHost(tool); err != nil {
			t.Fatalf("host lacks %s: run hack/cluster/build.sh apt", tool)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Fatal("host lacks /bin/busybox: run hack/cluster/build.sh apt")
	}
}

// fakeTracer writes a stand-in tracer binary; the image builder only copies it.
func fakeTracer(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tracer")
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho tracer\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBuildAllIsDeterministic(t *testing.T) {
	needHost(t)
	tracer := fakeTracer(t)
	digests := func(dir string) map[string]string {
		if _, err := buildAll(dir, tracer, "ktrace.local/tracer:test", "/bin/busybox"); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, f := range []string{"pause.tar", "workload.tar", "tracer.tar"} {
			img, err := tarball.ImageFromPath(filepath.Join(dir, f), nil)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			d, err := img.Digest()
			if err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			got[f] = fmt.Sprintf("image %s, file sha256:%x", d, sha256.Sum256(raw))
		}
		return got
	}
	first := digests(filepath.Join(t.TempDir(), "a"))
	second := digests(filepath.Join(t.TempDir(), "b"))
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("second build differs (-first +second):\n%s", diff)
	}
}

func TestTracerImage(t *testing.T) {
	needHost(t)
	dir := t.TempDir()
	s, err := tracerSpec("ktrace.local/tracer:test", fakeTracer(t), "/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.write(filepath.Join(dir, "tracer.tar")); err != nil {
		t.Fatal(err)
	}
	tag := "ktrace.local/tracer:test"
	img, err := tarball.ImageFromPath(filepath.Join(dir, "tracer.tar"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"/usr/local/bin/tracer"}, cf.Config.Entrypoint); diff != "" {
		t.Errorf("entrypoint of %s (-want +got):\n%s", tag, diff)
	}
	if cf.OS != "linux" || cf.Architecture == "" {
		t.Errorf("platform = %s/%s, want linux/<host arch>", cf.OS, cf.Architecture)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1", len(layers))
	}
	files := readLayer(t, layers[0])

	tcpdump, err := findHost("tcpdump")
	if err != nil {
		t.Fatal(err)
	}
	libs, err := sharedLibs(tcpdump)
	if err != nil {
		t.Fatal(err)
	}
	if len(libs) == 0 {
		t.Fatalf("ldd %s lists no libraries", tcpdump)
	}
	want := append([]string{"/usr/local/bin/tracer", tcpdump, "/etc/passwd"}, libs...)
	for _, tool := range tracerTools {
		p, _ := findHost(tool)
		want = append(want, p)
	}
	for _, p := range want {
		if h, err := resolve(files, p); err != nil {
			t.Errorf("%s: %v", p, err)
		} else if h.Typeflag != tar.TypeReg {
			t.Errorf("%s resolves to a %c entry, want a regular file", p, h.Typeflag)
		}
	}
	for name, h := range files {
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s owned by %d:%d, want root", name, h.Uid, h.Gid)
		}
	}
	if h := files["tmp"]; h == nil || h.Mode != 0o1777 {
		t.Errorf("/tmp = %+v, want a directory with mode 1777", h)
	}
	if passwd := files["etc/passwd"]; passwd == nil {
		t.Error("no /etc/passwd")
	}
}

// readLayer returns the layer's headers by path (no leading slash, no
// trailing slash for directories).
func readLayer(t *testing.T, l v1.Layer) map[string]*tar.Header {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimSuffix(h.Name, "/")] = h
	}
}

// resolve follows p through the layer's symlinks, as the kernel would in a
// container, and returns the entry it ends at.
func resolve(files map[string]*tar.Header, p string) (*tar.Header, error) {
	for hops := 0; hops < 40; hops++ {
		parts := strings.Split(strings.TrimPrefix(path.Clean(p), "/"), "/")
		cur, restart := "", false
		for i, part := range parts {
			next := path.Join(cur, part)
			h, ok := files[next]
			if !ok {
				return nil, errors.New("not in the layer (" + next + " missing)")
			}
			if h.Typeflag == tar.TypeSymlink {
				target := h.Linkname
				if !path.IsAbs(target) {
					target = path.Join("/", cur, target)
				}
				p = path.Join(append([]string{target}, parts[i+1:]...)...)
				restart = true
				break
			}
			if i == len(parts)-1 {
				return h, nil
			}
			cur = next
		}
		if !restart {
			break
		}
	}
	return nil, errors.New("too many symlinks")
}

func TestParseLdd(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    []string
		wantErr bool
	}{{
		name: "tcpdump",
		out: "\tlinux-vdso.so.1 (0x00007ffd5a1f0000)\n" +
			"\tlibpcap.so.0.8 => /lib/x86_64-linux-gnu/libpcap.so.0.8 (0x00007f3314fb4000)\n" +
			"\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f331481e000)\n" +
			"\t/lib64/ld-linux-x86-64.so.2 (0x00007f33152f2000)\n",
		want: []string{"/lib/x86_64-linux-gnu/libpcap.so.0.8", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"},
	}, {
		name:    "missing library",
		out:     "\tlibfoo.so.1 => not found\n",
		wantErr: true,
	}, {
		name: "empty",
		out:  "",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseLdd(tt.out)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestLayerRejectsConflicts(t *testing.T) {
	l := newLayer()
	if err := l.symlink("/lib", "usr/lib"); err != nil {
		t.Fatal(err)
	}
	if err := l.file("/lib/x", 0o644, []byte("x")); err == nil {
		t.Error("file below a symlink: got no error")
	}
	if err := l.file("/etc/a", 0o644, []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := l.file("/etc/a", 0o644, []byte("a")); err != nil {
		t.Errorf("same file twice: %v", err)
	}
	if err := l.file("/etc/a", 0o644, []byte("b")); err == nil {
		t.Error("different contents at one path: got no error")
	}
}
