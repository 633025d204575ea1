//go:build release

// These tests check a real snapshot release in dist/: `make validate-krew`
// builds one and runs them with -tags release.

package krew

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"debug/buildinfo"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// distEnv names goreleaser's output for TestDist. `make validate-krew` sets
// it, and then a missing or broken dist/ fails the test instead of skipping
// it.
const distEnv = "KTRACE_KREW_DIST"

// distDir is the goreleaser output to check, and whether the run demands one.
func distDir(t *testing.T) (string, bool) {
	t.Helper()
	if dir := os.Getenv(distEnv); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "metadata.json")); err != nil {
			t.Fatalf("%s=%q holds no goreleaser output (%v): run `make dist`", distEnv, dir, err)
		}
		return dir, true
	}
	dir := filepath.Join("..", "dist")
	if _, err := os.Stat(filepath.Join(dir, "metadata.json")); err != nil {
		t.Fatalf("no goreleaser output in %s and %s is unset: run `make validate-krew`, which builds a snapshot release first", dir, distEnv)
	}
	return dir, false
}

// TestDist checks the release in dist/: the rendered manifest against
// krew's rules and against the archives' real digests, the archives'
// contents and binaries, an install of every platform the way krew does it,
// and, for this machine's platform, `kubectl trace version` through kubectl.
func TestDist(t *testing.T) {
	dir, required := distDir(t)
	rel, err := LoadDist(dir)
	if err != nil {
		t.Fatal(err)
	}
	data, err := Render(rel)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	t.Logf("release %s, %d archives", rel.Tag, len(rel.Archives))

	t.Run("manifest", func(t *testing.T) {
		if err := Validate(p); err != nil {
			t.Errorf("breaks krew's rules:\n%v", err)
		}
		if err := CheckCoverage(p, Targets); err != nil {
			t.Errorf("platforms:\n%v", err)
		}
		if p.Metadata.Name != "trace" || p.Spec.Version != rel.Tag {
			t.Errorf("name %q version %q, want trace %s", p.Metadata.Name, p.Spec.Version, rel.Tag)
		}
		prefix := "https://github.com/ktrace-dev/kubectl-trace/releases/download/" + rel.Tag + "/"
		for i, pl := range p.Spec.Platforms {
			if len(pl.Selector.MatchExpressions) != 0 || len(pl.Selector.MatchLabels) != 2 ||
				pl.Selector.MatchLabels["os"] == "" || pl.Selector.MatchLabels["arch"] == "" {
				t.Errorf("platforms[%d]: selector %+v, want matchLabels with exactly os and arch", i, pl.Selector)
			}
			name, ok := strings.CutPrefix(pl.URI, prefix)
			if !ok {
				t.Errorf("platforms[%d]: uri %q does not start with %q", i, pl.URI, prefix)
				continue
			}
			// The real digest of the archive, not checksums.txt's word for it.
			if got := sha256File(t, filepath.Join(dir, name)); got != pl.SHA256 {
				t.Errorf("platforms[%d]: sha256 %s, but %s hashes to %s", i, pl.SHA256, name, got)
			}
		}
		// The manifest `make krew-manifest` wrote for the index is this one.
		written := filepath.Join(dir, "krew", "trace.yaml")
		got, err := os.ReadFile(written)
		switch {
		case err == nil:
			if diff := cmp.Diff(string(data), string(got)); diff != "" {
				t.Errorf("%s differs from the manifest rendered now: run `make krew-manifest` (-want +got):\n%s", written, diff)
			}
		case required:
			t.Errorf("reading the rendered manifest: %v (make validate-krew renders it first)", err)
		}
	})

	// Nothing in dist/ is an archive the manifest does not know about.
	t.Run("archives are the six", func(t *testing.T) {
		var found, listed []string
		for _, pattern := range []string{"*.tar.gz", "*.zip"} {
			m, _ := filepath.Glob(filepath.Join(dir, pattern))
			for _, f := range m {
				found = append(found, filepath.Base(f))
			}
		}
		for _, a := range rel.Archives {
			listed = append(listed, a.Name)
		}
		slices.Sort(found)
		slices.Sort(listed)
		if diff := cmp.Diff(listed, found); diff != "" || len(found) != len(Targets) {
			t.Errorf("archives in %s (-artifacts.json +on disk), want %d:\n%s", dir, len(Targets), diff)
		}
	})

	shim, err := os.ReadFile("kubectl_complete-trace")
	if err != nil {
		t.Fatal(err)
	}
	commitTime := commitTime(t, dir)
	for _, a := range rel.Archives {
		t.Run("archive/"+a.OS+"_"+a.Arch, func(t *testing.T) {
			files := readArchive(t, a.Path)
			fi, _ := os.Stat(a.Path)
			t.Logf("%s: %d bytes, binary %d bytes", a.Name, fi.Size(), len(files[a.Binary].body))

			want := []string{"LICENSE", "README.md", a.Binary}
			if a.OS != "windows" {
				want = append(want, "kubectl_complete-trace")
			}
			slices.Sort(want)
			var got []string
			for name := range files {
				got = append(got, name)
			}
			slices.Sort(got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
			if f, ok := files["kubectl_complete-trace"]; ok && (f.body != string(shim) || f.mode&0o111 == 0) {
				t.Errorf("kubectl_complete-trace is %q mode %o, want krew/kubectl_complete-trace, executable", f.body, f.mode)
			}
			for name, f := range files {
				if !commitTime.IsZero() && !f.mtime.Equal(commitTime) {
					t.Errorf("%s: mtime %s, want the commit's %s", name, f.mtime, commitTime)
				}
			}
			checkBinary(t, a, rel.Tag, files[a.Binary].body)
		})
	}

	for _, a := range rel.Archives {
		t.Run("install/"+a.OS+"_"+a.Arch, func(t *testing.T) {
			root := t.TempDir()
			in, err := Install(p, a.Path, root, Target{a.OS, a.Arch})
			if err != nil {
				t.Fatal(err)
			}
			if a.OS != runtime.GOOS || a.Arch != runtime.GOARCH {
				return
			}
			runThroughKubectl(t, required, in, filepath.Join(filepath.Dir(a.Path), a.Name), rel.Tag)
		})
	}
}

type archived struct {
	body  string
	mode  os.FileMode
	mtime time.Time
}

// readArchive reads every regular file of a release archive.
func readArchive(t *testing.T, path string) map[string]archived {
	t.Helper()
	files := map[string]archived{}
	if strings.HasSuffix(path, ".zip") {
		zr, err := zip.OpenReader(path)
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		for _, f := range zr.File {
			r, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(r)
			r.Close()
			if err != nil {
				t.Fatal(err)
			}
			files[f.Name] = archived{string(b), f.Mode(), f.Modified}
		}
		return files
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: owner %d:%d (%s:%s), want root", h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = archived{string(b), os.FileMode(h.Mode), h.ModTime}
	}
}

// commitTime is the time of the release's commit, which every file in the
// archives must carry; zero when git cannot say (the check is then left out).
func commitTime(t *testing.T, dir string) time.Time {
	t.Helper()
	var meta struct {
		Commit string `json:"commit"`
	}
	if err := readJSON(filepath.Join(dir, "metadata.json"), &meta); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("git", "show", "-s", "--format=%ct", meta.Commit).Output()
	if err != nil {
		t.Logf("not checking archive times: git show %s: %v", meta.Commit, err)
		return time.Time{}
	}
	sec, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		t.Fatalf("git show %s: commit time %q: %v", meta.Commit, out, err)
	}
	return time.Unix(sec, 0)
}

// checkBinary holds a release binary to .goreleaser.yaml: built for its
// archive's platform, without cgo, with trimmed paths and an empty build id,
// and with the version and default image set to the release tag.
func checkBinary(t *testing.T, a Archive, tag, body string) {
	t.Helper()
	magic := map[string]string{"linux": "\x7fELF", "darwin": "\xcf\xfa\xed\xfe", "windows": "MZ"}[a.OS]
	if !strings.HasPrefix(body, magic) {
		t.Errorf("%s does not start with the %s executable magic %q", a.Binary, a.OS, magic)
	}
	bi, err := buildinfo.Read(strings.NewReader(body))
	if err != nil {
		t.Fatalf("reading the build info of %s: %v", a.Binary, err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	for k, want := range map[string]string{"GOOS": a.OS, "GOARCH": a.Arch, "CGO_ENABLED": "0", "-trimpath": "true"} {
		if settings[k] != want {
			t.Errorf("build setting %s=%q, want %q", k, settings[k], want)
		}
	}
	// With -trimpath the go command leaves -ldflags out of the build info,
	// so the -X values are looked for in the binary itself (the host's
	// binary also prints them through kubectl, below).
	for _, want := range []string{tag, "ghcr.io/ktrace-dev/kubectl-trace-tracer:" + tag} {
		if !strings.Contains(body, want) {
			t.Errorf("%s does not contain %q: ldflags -X not applied", a.Binary, want)
		}
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Logf("not checking the build id: %v", err)
		return
	}
	f := filepath.Join(t.TempDir(), a.Binary)
	if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(goTool, "tool", "buildid", f).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("go tool buildid %s = %q (%v), want an empty build id", a.Binary, out, err)
	}
}

// kubectlPath finds kubectl: $KTRACE_KUBECTL, the local cluster's, or PATH's.
func kubectlPath(t *testing.T, required bool) string {
	t.Helper()
	if p := os.Getenv("KTRACE_KUBECTL"); p != "" {
		return p
	}
	if p, err := filepath.Abs(filepath.Join("..", ".cluster", "bin", "kubectl")); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("kubectl"); err == nil {
		return p
	}
	t.Fatal("no kubectl: run `make cluster-up` (it builds .cluster/bin/kubectl), put kubectl on PATH, or set KTRACE_KUBECTL")
	return ""
}

// runThroughKubectl runs the installed plugin the way a user does, with
// only krew's bin directory on PATH: kubectl finds kubectl-trace there.
// The completion shim goes next to it, as docs/install.md says to do.
func runThroughKubectl(t *testing.T, required bool, in Installed, archive, tag string) {
	kubectl := kubectlPath(t, required)
	binDir := filepath.Dir(in.Link)
	shim := readArchive(t, archive)["kubectl_complete-trace"]
	if err := os.WriteFile(filepath.Join(binDir, "kubectl_complete-trace"), []byte(shim.body), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + binDir, "HOME=" + t.TempDir(), "KUBECONFIG=" + filepath.Join(t.TempDir(), "none")}
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, kubectl, args...)
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("kubectl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, stderr.String())
		}
		t.Logf("kubectl %s:\n%s", strings.Join(args, " "), out)
		return string(out)
	}

	if out := run("plugin", "list"); !strings.Contains(out, in.Link) {
		t.Errorf("kubectl plugin list does not show %s", in.Link)
	}
	out := run("trace", "version")
	for _, want := range []string{
		"kubectl-trace " + tag + "\n",
		"tracer image: ghcr.io/ktrace-dev/kubectl-trace-tracer:" + tag + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl trace version does not print %q", want)
		}
	}
	if out := run("__complete", "trace", "vers"); !strings.Contains(out, "version") {
		t.Errorf("kubectl __complete trace vers (through kubectl_complete-trace) does not offer \"version\"")
	}
}
