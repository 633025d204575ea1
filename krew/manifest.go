// Package krew renders the kubectl-trace krew plugin manifest from its one
// template (trace.yaml.tmpl) and goreleaser's dist/ directory, holds the
// result to krew's documented rules, and installs it the way krew does, so
// that tests can run the installed plugin through kubectl.
//
// krew's own module is not available to this build, so the rules here follow
// its plugin-manifest guide and its validation and installation code
// (sigs.k8s.io/krew internal/index/validation and internal/installation).
package krew

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/version"
	"sigs.k8s.io/yaml"
)

// APIVersion and Kind are the only ones krew accepts.
const (
	APIVersion = "krew.googlecontainertools.github.com/v1alpha2"
	Kind       = "Plugin"
)

// Plugin is a krew plugin manifest.
type Plugin struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   Metadata `json:"metadata"`
	Spec       Spec     `json:"spec"`
}

// Metadata names the plugin; krew links its bin as kubectl-<name>.
type Metadata struct {
	Name string `json:"name"`
}

// Spec is what krew shows and installs.
type Spec struct {
	Version          string     `json:"version"`
	Homepage         string     `json:"homepage,omitempty"`
	ShortDescription string     `json:"shortDescription"`
	Description      string     `json:"description,omitempty"`
	Caveats          string     `json:"caveats,omitempty"`
	Platforms        []Platform `json:"platforms"`
}

// Platform is one download, chosen by its selector's os and arch labels.
type Platform struct {
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
	URI      string                `json:"uri"`
	SHA256   string                `json:"sha256"`
	Files    []FileOperation       `json:"files,omitempty"`
	Bin      string                `json:"bin"`
}

// FileOperation copies what From (a path or a glob in the unpacked archive)
// names to To (relative to the install directory).
type FileOperation struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Target is an os/arch pair as Go (and krew's selectors) name it.
type Target struct {
	OS, Arch string
}

// String is "os/arch".
func (t Target) String() string { return t.OS + "/" + t.Arch }

// Targets are the platforms every kubectl-trace release ships, in manifest
// order.
var Targets = []Target{
	{"linux", "amd64"}, {"linux", "arm64"},
	{"darwin", "amd64"}, {"darwin", "arm64"},
	{"windows", "amd64"}, {"windows", "arm64"},
}

// Parse reads a manifest strictly: an unknown field is an error, as it is
// for krew when it reads an index.
func Parse(data []byte) (Plugin, error) {
	var p Plugin
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		return Plugin{}, fmt.Errorf("parsing plugin manifest: %w", err)
	}
	return p, nil
}

var (
	// pluginName is stricter than krew's `^[\w-]+$`: krew-index asks for
	// lowercase names, and underscores would not survive krew's dash to
	// underscore conversion of the link name unambiguously.
	pluginName = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	sha256Hex  = regexp.MustCompile(`^[a-f0-9]{64}$`)
	// windowsReserved are names krew refuses because Windows cannot create
	// files with them.
	windowsReserved = []string{"con", "prn", "aux", "nul",
		"com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8", "com9",
		"lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9"}
)

// Validate holds p to krew's rules for a manifest in an index, and returns
// every violation it finds, joined.
func Validate(p Plugin) error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if p.APIVersion != APIVersion {
		bad("apiVersion is %q, want %q", p.APIVersion, APIVersion)
	}
	if p.Kind != Kind {
		bad("kind is %q, want %q", p.Kind, Kind)
	}
	if !pluginName.MatchString(p.Metadata.Name) {
		bad("metadata.name %q is not a valid plugin name: lowercase letters, digits and single dashes", p.Metadata.Name)
	} else if slices.Contains(windowsReserved, p.Metadata.Name) {
		bad("metadata.name %q is reserved on Windows", p.Metadata.Name)
	}
	if err := validateVersion(p.Spec.Version); err != nil {
		errs = append(errs, err)
	}
	switch {
	case strings.TrimSpace(p.Spec.ShortDescription) == "":
		bad("spec.shortDescription is empty")
	case strings.ContainsAny(p.Spec.ShortDescription, "\r\n"):
		bad("spec.shortDescription %q has a line break", p.Spec.ShortDescription)
	}
	if strings.TrimSpace(p.Spec.Description) == "" {
		bad("spec.description is empty")
	}
	if err := validateURL("spec.homepage", p.Spec.Homepage); err != nil {
		errs = append(errs, err)
	}
	if len(p.Spec.Platforms) == 0 {
		bad("spec.platforms is empty")
	}
	for i, pl := range p.Spec.Platforms {
		if err := validatePlatform(pl); err != nil {
			bad("spec.platforms[%d]: %w", i, err)
		}
	}
	return errors.Join(errs...)
}

// validateVersion wants what krew's semver.Parse accepts: a leading "v"
// and a semantic version.
func validateVersion(v string) error {
	if !strings.HasPrefix(v, "v") {
		return fmt.Errorf("spec.version %q does not start with \"v\"", v)
	}
	if _, err := version.ParseSemantic(v); err != nil {
		return fmt.Errorf("spec.version %q is not a semantic version: %w", v, err)
	}
	return nil
}

func validateURL(field, s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%s %q: %w", field, s, err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%s %q is not an https URL", field, s)
	}
	return nil
}

func validatePlatform(pl Platform) error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if err := validateURL("uri", pl.URI); err != nil {
		errs = append(errs, err)
	} else if !strings.HasSuffix(pl.URI, ".tar.gz") && !strings.HasSuffix(pl.URI, ".zip") {
		bad("uri %q is neither a .tar.gz nor a .zip archive", pl.URI)
	}
	if !sha256Hex.MatchString(pl.SHA256) {
		bad("sha256 %q is not 64 lowercase hex digits", pl.SHA256)
	}
	if pl.Bin == "" {
		bad("bin is not set")
	} else if !filepath.IsLocal(filepath.FromSlash(pl.Bin)) {
		bad("bin %q leaves the install directory", pl.Bin)
	}
	if pl.Files != nil && len(pl.Files) == 0 {
		bad("files is empty: leave it out to install everything")
	}
	for i, f := range pl.Files {
		switch {
		case f.From == "":
			bad("files[%d].from is not set", i)
		case f.To == "":
			bad("files[%d].to is not set", i)
		case path.Clean(f.To) != f.To:
			bad("files[%d].to %q is not clean, want %q", i, f.To, path.Clean(f.To))
		}
	}
	if err := validateSelector(pl.Selector); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func validateSelector(sel *metav1.LabelSelector) error {
	if sel == nil {
		return errors.New("selector is not set")
	}
	if len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0 {
		return errors.New("selector is empty")
	}
	for k := range sel.MatchLabels {
		if k != "os" && k != "arch" {
			return fmt.Errorf("selector key %q is not supported: only os and arch", k)
		}
	}
	for _, e := range sel.MatchExpressions {
		if e.Key != "os" && e.Key != "arch" {
			return fmt.Errorf("selector key %q is not supported: only os and arch", e.Key)
		}
	}
	if _, err := metav1.LabelSelectorAsSelector(sel); err != nil {
		return fmt.Errorf("selector: %w", err)
	}
	return nil
}

// Match returns the first platform whose selector matches t, as krew picks
// it, and whether there was one.
func Match(p Plugin, t Target) (Platform, bool, error) {
	for _, pl := range p.Spec.Platforms {
		ok, err := matches(pl, t)
		if err != nil {
			return Platform{}, false, err
		}
		if ok {
			return pl, true, nil
		}
	}
	return Platform{}, false, nil
}

func matches(pl Platform, t Target) (bool, error) {
	sel, err := metav1.LabelSelectorAsSelector(pl.Selector)
	if err != nil {
		return false, fmt.Errorf("platform %q: selector: %w", pl.URI, err)
	}
	return sel.Matches(labels.Set{"os": t.OS, "arch": t.Arch}), nil
}

// CheckCoverage wants each target matched by exactly one platform, and each
// platform to match some target: no platform missing, none ambiguous, none
// for a target the release does not build.
func CheckCoverage(p Plugin, targets []Target) error {
	var errs []error
	used := make([]bool, len(p.Spec.Platforms))
	for _, t := range targets {
		var hits []string
		for i, pl := range p.Spec.Platforms {
			ok, err := matches(pl, t)
			if err != nil {
				return err
			}
			if ok {
				used[i] = true
				hits = append(hits, fmt.Sprintf("platforms[%d]", i))
			}
		}
		switch len(hits) {
		case 0:
			errs = append(errs, fmt.Errorf("no platform for %s", t))
		case 1:
		default:
			errs = append(errs, fmt.Errorf("%s is matched by %s: krew would take the first", t, strings.Join(hits, " and ")))
		}
	}
	for i, u := range used {
		if !u {
			errs = append(errs, fmt.Errorf("platforms[%d] (%s) matches none of the release's targets", i, p.Spec.Platforms[i].URI))
		}
	}
	return errors.Join(errs...)
}
