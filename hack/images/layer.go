package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// epoch is the modification time of every file in every layer and the
// creation time of every image: fixed, so a rebuild gives the same digest.
var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// entry is one file, directory or symlink of a layer.
type entry struct {
	typ  byte   // tar.TypeReg, tar.TypeDir or tar.TypeSymlink
	mode int64  // Unix permission bits as in tar, e.g. 0o755, 0o1777
	data []byte // contents of a regular file given in memory
	src  string // host file to copy for a regular file, if data is nil
	link string // symlink target
}

// layer is an in-memory root filesystem that becomes one image layer. Paths
// are absolute and clean; every entry is owned by root; parents are created
// as 0755 directories on demand.
type layer struct {
	entries map[string]*entry
}

func newLayer() *layer {
	return &layer{entries: map[string]*entry{"/": {typ: tar.TypeDir, mode: 0o755}}}
}

// put adds e at p after creating its parents. Adding the same path twice is
// fine when both agree (e.g. two binaries needing one library); anything
// else is an error.
func (l *layer) put(p string, e *entry) error {
	if !path.IsAbs(p) || path.Clean(p) != p {
		return fmt.Errorf("layer path %q is not absolute and clean", p)
	}
	if err := l.mkdirAll(path.Dir(p)); err != nil {
		return err
	}
	if old, ok := l.entries[p]; ok {
		if old.typ == e.typ && old.mode == e.mode && old.src == e.src && old.link == e.link && bytes.Equal(old.data, e.data) {
			return nil
		}
		if old.typ == tar.TypeDir && e.typ == tar.TypeDir {
			old.mode = e.mode // explicit mode wins over an implicit parent
			return nil
		}
		return fmt.Errorf("layer path %q added twice with different contents", p)
	}
	l.entries[p] = e
	return nil
}

func (l *layer) mkdirAll(p string) error {
	if p == "/" {
		return nil
	}
	if e, ok := l.entries[p]; ok {
		if e.typ != tar.TypeDir {
			return fmt.Errorf("layer path %q is not a directory", p)
		}
		return nil
	}
	if err := l.mkdirAll(path.Dir(p)); err != nil {
		return err
	}
	l.entries[p] = &entry{typ: tar.TypeDir, mode: 0o755}
	return nil
}

// dir adds an empty directory with the given mode (e.g. 01777 for /tmp).
func (l *layer) dir(p string, mode int64) error {
	return l.put(p, &entry{typ: tar.TypeDir, mode: mode})
}

// file adds a regular file with the given contents.
func (l *layer) file(p string, mode int64, data []byte) error {
	return l.put(p, &entry{typ: tar.TypeReg, mode: mode, data: data})
}

// copyFile adds the host file src (symlinks followed) as p, keeping its
// permission bits.
func (l *layer) copyFile(p, src string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%q is not a regular file", src)
	}
	return l.put(p, &entry{typ: tar.TypeReg, mode: unixPerm(fi.Mode()), src: src})
}

// symlink adds p pointing at target (kept verbatim).
func (l *layer) symlink(p, target string) error {
	return l.put(p, &entry{typ: tar.TypeSymlink, mode: 0o777, link: target})
}

// copyHost adds the host path p under the same path, mirroring every
// symlink met on the way (e.g. Debian's /lib -> usr/lib, or
// /lib64/ld-linux-x86-64.so.2 -> /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2),
// so that the path resolves in the image exactly as on the host.
func (l *layer) copyHost(p string) error {
	return l.copyHostDepth(filepath.Clean(p), 0)
}

func (l *layer) copyHostDepth(p string, depth int) error {
	if depth > 40 {
		return fmt.Errorf("too many levels of symbolic links resolving %q", p)
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	cur := "/"
	for i, part := range parts {
		next := path.Join(cur, part)
		fi, err := os.Lstat(next)
		if err != nil {
			return err
		}
		last := i == len(parts)-1
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(next)
			if err != nil {
				return err
			}
			if err := l.symlink(next, target); err != nil {
				return err
			}
			if !path.IsAbs(target) {
				target = path.Join(cur, target)
			}
			rest := path.Join(append([]string{target}, parts[i+1:]...)...)
			return l.copyHostDepth(path.Clean(rest), depth+1)
		case last && fi.Mode().IsRegular():
			return l.copyFile(next, next)
		case last && fi.IsDir():
			return l.dir(next, unixPerm(fi.Mode()))
		case last:
			return fmt.Errorf("%q is neither a file, a directory nor a symlink", next)
		case !fi.IsDir():
			return fmt.Errorf("%q is not a directory", next)
		}
		cur = next
	}
	return nil
}

// tar writes the layer as an uncompressed tar: entries sorted by path,
// root-owned, fixed mtimes, so equal inputs give byte-identical output.
func (l *layer) tar() ([]byte, error) {
	paths := make([]string, 0, len(l.entries))
	for p := range l.entries {
		if p != "/" {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		e := l.entries[p]
		hdr := &tar.Header{
			Typeflag: e.typ,
			Name:     strings.TrimPrefix(p, "/"),
			Mode:     e.mode,
			ModTime:  epoch,
			Uname:    "root",
			Gname:    "root",
		}
		var body io.Reader
		switch e.typ {
		case tar.TypeDir:
			hdr.Name += "/"
		case tar.TypeSymlink:
			hdr.Linkname = e.link
		case tar.TypeReg:
			data := e.data
			if data == nil {
				var err error
				if data, err = os.ReadFile(e.src); err != nil {
					return nil, err
				}
			}
			hdr.Size = int64(len(data))
			body = bytes.NewReader(data)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("writing %q: %w", p, err)
		}
		if body != nil {
			if _, err := io.Copy(tw, body); err != nil {
				return nil, fmt.Errorf("writing %q: %w", p, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// unixPerm turns Go's file mode into tar's permission bits, sticky included.
func unixPerm(m fs.FileMode) int64 {
	p := int64(m.Perm())
	if m&fs.ModeSticky != 0 {
		p |= 0o1000
	}
	return p
}
