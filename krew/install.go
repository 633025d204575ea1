package krew

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// Installed is where Install put a plugin.
type Installed struct {
	// Dir is <root>/store/<name>/<version>.
	Dir string
	// Bin is the plugin executable inside Dir.
	Bin string
	// Link is <root>/bin/kubectl-<name>, a relative symlink to Bin.
	Link string
}

// Install installs p from a local archive into the krew root dir for target
// t, step by step as `kubectl krew install --manifest=… --archive=…` does:
// pick the first platform that matches t, check the archive's sha256,
// unpack it (tar.gz or zip, told apart by content, regular files and
// directories only), apply the platform's files rules (by default every
// file), move the result to store/<name>/<version>, and link bin as
// bin/kubectl-<name> (dashes in the name become underscores; ".exe" for
// Windows).
func Install(p Plugin, archive, root string, t Target) (Installed, error) {
	pl, ok, err := Match(p, t)
	if err != nil {
		return Installed{}, err
	}
	if !ok {
		return Installed{}, fmt.Errorf("plugin %q offers no platform for %s", p.Metadata.Name, t)
	}
	data, err := os.ReadFile(archive)
	if err != nil {
		return Installed{}, fmt.Errorf("reading the archive for %s: %w", t, err)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, pl.SHA256) {
		return Installed{}, fmt.Errorf("archive %q has sha256 %s, the manifest says %s", archive, got, pl.SHA256)
	}

	// Scratch directories live in root so that the final rename stays on
	// one file system.
	if err := os.MkdirAll(root, 0o755); err != nil {
		return Installed{}, err
	}
	staging, err := os.MkdirTemp(root, "krew-downloads")
	if err != nil {
		return Installed{}, err
	}
	defer os.RemoveAll(staging)
	if err := extract(staging, data); err != nil {
		return Installed{}, fmt.Errorf("unpacking %q: %w", archive, err)
	}

	files := pl.Files
	if files == nil {
		files = []FileOperation{{From: "*", To: "."}}
	}
	moved, err := os.MkdirTemp(root, "krew-temp-move")
	if err != nil {
		return Installed{}, err
	}
	defer os.RemoveAll(moved)
	for _, fo := range files {
		if err := moveFiles(staging, moved, fo); err != nil {
			return Installed{}, fmt.Errorf("files rule {from: %q, to: %q}: %w", fo.From, fo.To, err)
		}
	}

	in := Installed{Dir: filepath.Join(root, "store", p.Metadata.Name, p.Spec.Version)}
	if err := os.MkdirAll(filepath.Dir(in.Dir), 0o755); err != nil {
		return Installed{}, err
	}
	if err := os.Chmod(moved, 0o755); err != nil {
		return Installed{}, err
	}
	if err := os.Rename(moved, in.Dir); err != nil {
		return Installed{}, fmt.Errorf("moving the plugin into the store: %w", err)
	}

	if !filepath.IsLocal(filepath.FromSlash(pl.Bin)) {
		return Installed{}, fmt.Errorf("bin %q leaves the install directory", pl.Bin)
	}
	in.Bin = filepath.Join(in.Dir, filepath.FromSlash(pl.Bin))
	fi, err := os.Stat(in.Bin)
	if err != nil {
		return Installed{}, fmt.Errorf("bin %q is not among the installed files (check the files rules): %w", pl.Bin, err)
	}
	if !fi.Mode().IsRegular() {
		return Installed{}, fmt.Errorf("bin %q is not a regular file", pl.Bin)
	}
	if t.OS != "windows" && fi.Mode().Perm()&0o111 == 0 {
		return Installed{}, fmt.Errorf("bin %q is not executable (mode %s)", pl.Bin, fi.Mode())
	}

	binDir := filepath.Join(root, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return Installed{}, err
	}
	in.Link = filepath.Join(binDir, LinkName(p.Metadata.Name, t.OS))
	rel, err := filepath.Rel(binDir, in.Bin)
	if err != nil {
		return Installed{}, err
	}
	if err := os.Symlink(rel, in.Link); err != nil {
		return Installed{}, fmt.Errorf("linking the plugin: %w", err)
	}
	return in, nil
}

// LinkName is the name krew gives the link to a plugin's bin, and so the
// name kubectl looks for on PATH.
func LinkName(plugin, goos string) string {
	name := "kubectl-" + strings.ReplaceAll(plugin, "-", "_")
	if goos == "windows" {
		name += ".exe"
	}
	return name
}

// extract unpacks data into dir with krew's restrictions: no entry with ".."
// or an absolute path, and in a tarball nothing but regular files and
// directories (a symlink fails the install).
func extract(dir string, data []byte) error {
	switch typ := strings.Split(http.DetectContentType(data), ";")[0]; typ {
	case "application/zip":
		return extractZip(dir, data)
	case "application/x-gzip":
		return extractTarGz(dir, data)
	default:
		return fmt.Errorf("content type %q is not a supported archive format: want tar.gz or zip", typ)
	}
}

func suspicious(name string) error {
	if strings.Contains(name, "..") {
		return fmt.Errorf("refusing to unpack entry %q: it contains \"..\"", name)
	}
	if strings.HasPrefix(name, "/") || strings.HasPrefix(name, `\`) {
		return fmt.Errorf("refusing to unpack absolute entry %q", name)
	}
	return nil
}

func extractZip(dir string, data []byte) error {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return err
	}
	for _, f := range zr.File {
		if err := suspicious(f.Name); err != nil {
			return err
		}
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		if f.FileInfo().IsDir() {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		r, err := f.Open()
		if err != nil {
			return err
		}
		err = writeFile(p, r, f.Mode().Perm())
		r.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func extractTarGz(dir string, data []byte) error {
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return err
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Name == "pax_global_header" {
			continue
		}
		if err := suspicious(h.Name); err != nil {
			return err
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := writeFile(p, tr, os.FileMode(h.Mode).Perm()); err != nil {
				return err
			}
		default:
			return fmt.Errorf("entry %q has tar type %q, which krew does not unpack: only regular files and directories", h.Name, h.Typeflag)
		}
	}
}

func writeFile(p string, r io.Reader, mode os.FileMode) error {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// moveFiles applies one files rule the way krew does: if From names an
// existing path it moves to To (or keeps its name when To is "."),
// otherwise From is a glob and each match moves into the directory To,
// keeping its base name. A glob that matches nothing is an error.
func moveFiles(fromDir, toDir string, fo FileOperation) error {
	if filepath.Clean(fo.To) != fo.To {
		return fmt.Errorf("to %q is not clean, want %q", fo.To, filepath.Clean(fo.To))
	}
	var moves [][2]string
	direct := filepath.Join(fromDir, filepath.FromSlash(fo.From))
	if _, err := os.Stat(direct); err == nil {
		to := fo.To
		if to == "." {
			to = filepath.Base(direct)
		}
		moves = append(moves, [2]string{direct, filepath.Join(toDir, filepath.FromSlash(to))})
	} else {
		matches, err := filepath.Glob(filepath.Join(fromDir, filepath.FromSlash(fo.From)))
		if err != nil {
			return err
		}
		if len(matches) == 0 {
			return fmt.Errorf("no file in the archive matches %q", fo.From)
		}
		for _, m := range matches {
			moves = append(moves, [2]string{m, filepath.Join(toDir, filepath.FromSlash(fo.To), filepath.Base(m))})
		}
	}
	for _, m := range moves {
		if !within(fromDir, m[0]) || !within(toDir, m[1]) {
			return fmt.Errorf("moving %q to %q leaves the archive or the install directory", m[0], m[1])
		}
		if err := os.MkdirAll(filepath.Dir(m[1]), 0o755); err != nil {
			return err
		}
		if err := os.Rename(m[0], m[1]); err != nil {
			return err
		}
	}
	return nil
}

func within(base, p string) bool {
	rel, err := filepath.Rel(base, p)
	return err == nil && filepath.IsLocal(rel)
}
