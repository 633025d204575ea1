package krew

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// entry is one file in a test archive.
type entry struct {
	name string
	mode int64
	body string
	// typ is a tar type; zero means a regular file.
	typ  byte
	link string
}

func writeTarGz(t *testing.T, path string, entries []entry) {
	t.Helper()
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Size: int64(len(e.body)), Typeflag: tar.TypeReg, ModTime: time.Unix(1, 0)}
		if e.typ != 0 {
			h.Typeflag, h.Size, h.Linkname = e.typ, 0, e.link
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeZip(t *testing.T, path string, entries []entry) {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		h.SetMode(os.FileMode(e.mode))
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// fakeDist writes what goreleaser leaves in dist/ for version 0.3.0, with
// tiny archives laid out as .goreleaser.yaml lays them out.
func fakeDist(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	type artifact struct {
		Name   string         `json:"name"`
		Path   string         `json:"path"`
		Goos   string         `json:"goos"`
		Goarch string         `json:"goarch"`
		Type   string         `json:"type"`
		Extra  map[string]any `json:"extra"`
	}
	var artifacts []artifact
	var sums strings.Builder
	// Reverse order: LoadDist sorts.
	for i := len(Targets) - 1; i >= 0; i-- {
		tg := Targets[i]
		name := fmt.Sprintf("kubectl-trace_v0.3.0_%s_%s", tg.OS, tg.Arch)
		bin := "kubectl-trace"
		docs := []entry{{name: "LICENSE", mode: 0o644, body: "license\n"}, {name: "README.md", mode: 0o644, body: "readme\n"}}
		if tg.OS == "windows" {
			name += ".zip"
			bin += ".exe"
			writeZip(t, filepath.Join(dir, name), append([]entry{{name: bin, mode: 0o755, body: "MZ"}}, docs...))
		} else {
			name += ".tar.gz"
			writeTarGz(t, filepath.Join(dir, name), append([]entry{
				{name: bin, mode: 0o755, body: "#!/bin/sh\necho fake\n"},
				{name: "kubectl_complete-trace", mode: 0o755, body: "#!/bin/sh\n"},
			}, docs...))
		}
		artifacts = append(artifacts,
			artifact{Name: bin, Path: "dist/x/" + bin, Goos: tg.OS, Goarch: tg.Arch, Type: "Binary"},
			artifact{Name: name, Path: "dist/" + name, Goos: tg.OS, Goarch: tg.Arch, Type: "Archive",
				Extra: map[string]any{"Binaries": []string{bin}, "Format": "tar.gz"}})
		fmt.Fprintf(&sums, "%s  %s\n", sha256File(t, filepath.Join(dir, name)), name)
	}
	writeJSON(t, filepath.Join(dir, "artifacts.json"), artifacts)
	writeJSON(t, filepath.Join(dir, "metadata.json"), map[string]string{
		"project_name": "kubectl-trace", "tag": "v0.3.0", "version": "0.3.0", "commit": "0123456789abcdef"})
	if err := os.WriteFile(filepath.Join(dir, "checksums.txt"), []byte(sums.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// renderFake renders the template against fakeDist.
func renderFake(t *testing.T) (Plugin, Release) {
	t.Helper()
	rel, err := LoadDist(fakeDist(t))
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
	return p, rel
}

func TestRenderFollowsKrewRules(t *testing.T) {
	p, rel := renderFake(t)
	if err := Validate(p); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if err := CheckCoverage(p, Targets); err != nil {
		t.Errorf("CheckCoverage: %v", err)
	}

	type row struct{ OS, Arch, URI, SHA256, Bin string }
	var want, got []row
	for _, a := range rel.Archives {
		want = append(want, row{a.OS, a.Arch,
			"https://github.com/ktrace-dev/kubectl-trace/releases/download/v0.3.0/" + a.Name, sha256File(t, a.Path), a.Binary})
	}
	for _, pl := range p.Spec.Platforms {
		got = append(got, row{pl.Selector.MatchLabels["os"], pl.Selector.MatchLabels["arch"], pl.URI, pl.SHA256, pl.Bin})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("platforms (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff("v0.3.0", p.Spec.Version); diff != "" {
		t.Errorf("spec.version (-want +got):\n%s", diff)
	}
	for _, s := range []string{"privileged", "--mode ephemeral", "Linux nodes only",
		"create, get and delete pods", "create pods/attach", "patch\n    pods/ephemeralcontainers",
		"--helper-namespace", "ghcr.io/ktrace-dev/kubectl-trace-tracer:v0.3.0", "--image"} {
		if !strings.Contains(p.Spec.Caveats, s) {
			t.Errorf("caveats do not mention %q:\n%s", s, p.Spec.Caveats)
		}
	}
}

func TestInstallEveryTarget(t *testing.T) {
	p, rel := renderFake(t)
	for _, a := range rel.Archives {
		t.Run(a.OS+"_"+a.Arch, func(t *testing.T) {
			root := t.TempDir()
			in, err := Install(p, a.Path, root, Target{a.OS, a.Arch})
			if err != nil {
				t.Fatal(err)
			}
			wantLink := filepath.Join(root, "bin", "kubectl-trace")
			if a.OS == "windows" {
				wantLink += ".exe"
			}
			if diff := cmp.Diff(wantLink, in.Link); diff != "" {
				t.Errorf("link (-want +got):\n%s", diff)
			}
			if target, err := filepath.EvalSymlinks(in.Link); err != nil || target != filepath.Join(root, "store", "trace", "v0.3.0", a.Binary) {
				t.Errorf("link resolves to %q (%v)", target, err)
			}
			// Only what the files rules name is installed.
			var names []string
			entries, err := os.ReadDir(in.Dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if diff := cmp.Diff([]string{"LICENSE", a.Binary}, names); diff != "" {
				t.Errorf("installed files (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Plugin)
		want   string
	}{
		{"api version", func(p *Plugin) { p.APIVersion = "krew.googlecontainertools.github.com/v1alpha1" }, "apiVersion"},
		{"kind", func(p *Plugin) { p.Kind = "Plugins" }, "kind"},
		{"upper-case name", func(p *Plugin) { p.Metadata.Name = "Trace" }, "metadata.name"},
		{"underscore in name", func(p *Plugin) { p.Metadata.Name = "k_trace" }, "metadata.name"},
		{"windows device name", func(p *Plugin) { p.Metadata.Name = "nul" }, "reserved on Windows"},
		{"version without v", func(p *Plugin) { p.Spec.Version = "0.3.0" }, `does not start with "v"`},
		{"version not semver", func(p *Plugin) { p.Spec.Version = "v0.3" }, "not a semantic version"},
		{"no short description", func(p *Plugin) { p.Spec.ShortDescription = " " }, "shortDescription is empty"},
		{"short description on two lines", func(p *Plugin) { p.Spec.ShortDescription = "a\nb" }, "line break"},
		{"no description", func(p *Plugin) { p.Spec.Description = "" }, "description is empty"},
		{"no homepage", func(p *Plugin) { p.Spec.Homepage = "" }, "spec.homepage"},
		{"no platforms", func(p *Plugin) { p.Spec.Platforms = nil }, "platforms is empty"},
		{"no uri", func(p *Plugin) { p.Spec.Platforms[0].URI = "" }, "https URL"},
		{"uri not an archive", func(p *Plugin) { p.Spec.Platforms[0].URI += ".sig" }, "neither a .tar.gz nor a .zip"},
		{"short sha256", func(p *Plugin) { p.Spec.Platforms[0].SHA256 = "abc" }, "64 lowercase hex"},
		{"upper-case sha256", func(p *Plugin) {
			p.Spec.Platforms[0].SHA256 = strings.ToUpper(p.Spec.Platforms[0].SHA256)
		}, "64 lowercase hex"},
		{"no bin", func(p *Plugin) { p.Spec.Platforms[0].Bin = "" }, "bin is not set"},
		{"bin outside", func(p *Plugin) { p.Spec.Platforms[0].Bin = "../kubectl-trace" }, "leaves the install directory"},
		{"empty files", func(p *Plugin) { p.Spec.Platforms[0].Files = []FileOperation{} }, "files is empty"},
		{"files without from", func(p *Plugin) { p.Spec.Platforms[0].Files[0].From = "" }, "from is not set"},
		{"files without to", func(p *Plugin) { p.Spec.Platforms[0].Files[0].To = "" }, "to is not set"},
		{"files to unclean", func(p *Plugin) { p.Spec.Platforms[0].Files[0].To = "./bin/" }, "not clean"},
		{"no selector", func(p *Plugin) { p.Spec.Platforms[0].Selector = nil }, "selector is not set"},
		{"empty selector", func(p *Plugin) { p.Spec.Platforms[0].Selector = &metav1.LabelSelector{} }, "selector is empty"},
		{"selector key", func(p *Plugin) {
			p.Spec.Platforms[0].Selector.MatchLabels["distro"] = "debian"
		}, `key "distro"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := renderFake(t)
			tt.mutate(&p)
			err := Validate(p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestCheckCoverageRejects(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Plugin)
		want   string
	}{
		{"missing target", func(p *Plugin) { p.Spec.Platforms = p.Spec.Platforms[1:] }, "no platform for linux/amd64"},
		{"two platforms for one target", func(p *Plugin) {
			p.Spec.Platforms[1].Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"os": "linux"}}
		}, "linux/amd64 is matched by platforms[0] and platforms[1]"},
		{"platform for no target", func(p *Plugin) {
			p.Spec.Platforms = append(p.Spec.Platforms, Platform{
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"os": "freebsd", "arch": "amd64"}}})
		}, "platforms[6] () matches none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := renderFake(t)
			tt.mutate(&p)
			err := CheckCoverage(p, Targets)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("CheckCoverage() = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestParseIsStrict(t *testing.T) {
	_, err := Parse([]byte("apiVersion: " + APIVersion + "\nkind: Plugin\nmetadata: {name: trace}\nspec:\n  shortDescripton: typo\n"))
	if err == nil || !strings.Contains(err.Error(), "shortDescripton") {
		t.Errorf("Parse() = %v, want an unknown field error", err)
	}
}

func TestInstallRejects(t *testing.T) {
	linux := Target{"linux", "amd64"}
	bin := entry{name: "kubectl-trace", mode: 0o755, body: "#!/bin/sh\n"}
	license := entry{name: "LICENSE", mode: 0o644, body: "license\n"}
	tests := []struct {
		name    string
		entries []entry
		mutate  func(*Platform)
		want    string
	}{
		{"digest differs", []entry{bin, license}, func(pl *Platform) { pl.SHA256 = strings.Repeat("0", 64) }, "the manifest says"},
		{"dot-dot entry", []entry{bin, license, {name: "a/../../evil", mode: 0o644}}, nil, `contains ".."`},
		{"absolute entry", []entry{bin, license, {name: "/etc/evil", mode: 0o644}}, nil, "absolute entry"},
		{"symlink entry", []entry{bin, license, {name: "kubectl-trace-link", typ: tar.TypeSymlink, link: "kubectl-trace"}}, nil, "only regular files and directories"},
		{"files glob matches nothing", []entry{bin}, nil, `no file in the archive matches "LICENSE"`},
		{"bin not among the files", []entry{bin, license}, func(pl *Platform) {
			pl.Files = []FileOperation{{From: "LICENSE", To: "."}}
		}, "is not among the installed files"},
		{"bin not executable", []entry{{name: "kubectl-trace", mode: 0o644}, license}, nil, "not executable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			archive := filepath.Join(t.TempDir(), "a.tar.gz")
			writeTarGz(t, archive, tt.entries)
			p, _ := renderFake(t)
			pl := &p.Spec.Platforms[0]
			pl.SHA256 = sha256File(t, archive)
			if tt.mutate != nil {
				tt.mutate(pl)
			}
			_, err := Install(p, archive, t.TempDir(), linux)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Install() = %v, want an error with %q", err, tt.want)
			}
		})
	}
}
