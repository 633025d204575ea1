package krew

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/template"
)

// Template is the manifest template, trace.yaml.tmpl: the one source of the
// manifest published in the project's krew index.
//
//go:embed trace.yaml.tmpl
var Template string

// ProjectName is goreleaser's project_name in .goreleaser.yaml.
const ProjectName = "kubectl-trace"

// Release is what Template is rendered with.
type Release struct {
	// Version is goreleaser's version, without a leading "v".
	Version string
	// Tag is "v" + Version: the krew version and the tracer image tag.
	Tag string
	// Archives has one entry per target, in the order of Targets.
	Archives []Archive
}

// Archive is one release archive in dist/.
type Archive struct {
	OS, Arch string
	// Name is the file name, the last element of the download URI.
	Name string
	// Path is where it is on this machine.
	Path string
	// Binary is the plugin executable's name inside the archive.
	Binary string
	// SHA256 is the digest checksums.txt gives for it.
	SHA256 string
}

// LoadDist reads goreleaser's output in dir: the version from metadata.json,
// the archives from artifacts.json and their digests from checksums.txt.
func LoadDist(dir string) (Release, error) {
	var meta struct {
		ProjectName string `json:"project_name"`
		Version     string `json:"version"`
		Commit      string `json:"commit"`
	}
	if err := readJSON(filepath.Join(dir, "metadata.json"), &meta); err != nil {
		return Release{}, err
	}
	if meta.ProjectName != ProjectName {
		return Release{}, fmt.Errorf("%s: project_name is %q, want %q", filepath.Join(dir, "metadata.json"), meta.ProjectName, ProjectName)
	}
	if meta.Commit == "" || meta.Commit == "none" {
		return Release{}, fmt.Errorf("%s: commit is %q: goreleaser could not read the git state, so the build is neither versioned nor reproducible (a checkout without a remote? run it through `make dist`)", filepath.Join(dir, "metadata.json"), meta.Commit)
	}
	if meta.Version == "" || strings.HasPrefix(meta.Version, "v") {
		return Release{}, fmt.Errorf("%s: version %q is empty or has a leading \"v\"", filepath.Join(dir, "metadata.json"), meta.Version)
	}

	var artifacts []struct {
		Name   string `json:"name"`
		Type   string `json:"type"`
		Goos   string `json:"goos"`
		Goarch string `json:"goarch"`
		Extra  struct {
			Binaries []string `json:"Binaries"`
		} `json:"extra"`
	}
	if err := readJSON(filepath.Join(dir, "artifacts.json"), &artifacts); err != nil {
		return Release{}, err
	}
	sums, err := readChecksums(filepath.Join(dir, "checksums.txt"))
	if err != nil {
		return Release{}, err
	}

	rel := Release{Version: meta.Version, Tag: "v" + meta.Version}
	for _, a := range artifacts {
		if a.Type != "Archive" {
			continue
		}
		t := Target{a.Goos, a.Goarch}
		if !slices.Contains(Targets, t) {
			return Release{}, fmt.Errorf("archive %q is for %s, which is not a release target", a.Name, t)
		}
		if len(a.Extra.Binaries) != 1 {
			return Release{}, fmt.Errorf("archive %q holds binaries %q, want exactly one", a.Name, a.Extra.Binaries)
		}
		sum, ok := sums[a.Name]
		if !ok {
			return Release{}, fmt.Errorf("archive %q is not in checksums.txt", a.Name)
		}
		p := filepath.Join(dir, a.Name)
		if _, err := os.Stat(p); err != nil {
			return Release{}, fmt.Errorf("archive %q listed in artifacts.json: %w", a.Name, err)
		}
		rel.Archives = append(rel.Archives, Archive{
			OS: a.Goos, Arch: a.Goarch, Name: a.Name, Path: p, Binary: a.Extra.Binaries[0], SHA256: sum,
		})
	}
	slices.SortFunc(rel.Archives, func(a, b Archive) int {
		return slices.Index(Targets, Target{a.OS, a.Arch}) - slices.Index(Targets, Target{b.OS, b.Arch})
	})
	for i := 1; i < len(rel.Archives); i++ {
		if a, b := rel.Archives[i-1], rel.Archives[i]; a.OS == b.OS && a.Arch == b.Arch {
			return Release{}, fmt.Errorf("two archives for %s/%s: %q and %q", a.OS, a.Arch, a.Name, b.Name)
		}
	}
	if len(rel.Archives) == 0 {
		return Release{}, fmt.Errorf("%s lists no archives: run `make dist`", filepath.Join(dir, "artifacts.json"))
	}
	return rel, nil
}

// Render fills Template in with rel.
func Render(rel Release) ([]byte, error) {
	t, err := template.New("trace.yaml.tmpl").Option("missingkey=error").Parse(Template)
	if err != nil {
		return nil, fmt.Errorf("parsing the manifest template: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, rel); err != nil {
		return nil, fmt.Errorf("rendering the manifest template: %w", err)
	}
	return b.Bytes(), nil
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading goreleaser output: %w (run `make dist`)", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("parsing %s: %w", path, err)
	}
	return nil
}

// readChecksums reads a sha256sum-style file: "<hex>  <name>" per line.
func readChecksums(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading goreleaser output: %w (run `make dist`)", err)
	}
	sums := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		sum, name, ok := strings.Cut(line, "  ")
		if !ok || !sha256Hex.MatchString(sum) || name == "" {
			return nil, fmt.Errorf("%s:%d: %q is not \"<sha256>  <file>\"", path, n, line)
		}
		sums[name] = sum
	}
	if len(sums) == 0 {
		return nil, fmt.Errorf("%s lists no files", path)
	}
	return sums, sc.Err()
}
