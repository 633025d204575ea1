//go:build linux

package ftrace

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// rawReader reads an instance's per_cpu/cpuN/trace_pipe_raw files and
// merges their events in time order, as the kernel's trace_pipe does: the
// earliest of the CPUs' next events first; a CPU whose buffer is empty for
// now is not waited for.
type rawReader struct {
	hdr  pageHeader
	dec  decoder
	cpus []*rawCPU
	// lost counts the events the pages say were lost; lostPages the
	// pages that say some were, without a count.
	lost, lostPages uint64
}

type rawCPU struct {
	cpu  int
	f    *os.File
	page []byte
	evs  []rawEvent
	next int
}

// openRaw reads the formats of events (as "system:event" or "system:*")
// and opens every CPU's trace_pipe_raw of the instance.
func openRaw(inst *os.Root, events []string) (_ *rawReader, err error) {
	r := &rawReader{dec: decoder{formats: map[uint16]*eventFormat{}}}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	b, err := inst.ReadFile("events/header_page")
	if err != nil {
		return nil, fmt.Errorf("reading events/header_page: %w", bareErr(err))
	}
	if r.hdr, err = parsePageHeader(string(b)); err != nil {
		return nil, err
	}
	for _, e := range events {
		system, name, ok := strings.Cut(e, ":")
		if !ok {
			return nil, fmt.Errorf("event %q is not system:event", e)
		}
		names := []string{name}
		if name == "*" {
			entries, err := fs.ReadDir(inst.FS(), path.Join("events", system))
			if err != nil {
				return nil, fmt.Errorf("listing events of %s: %w", system, bareErr(err))
			}
			names = names[:0]
			for _, en := range entries {
				if en.IsDir() {
					names = append(names, en.Name())
				}
			}
		}
		for _, n := range names {
			b, err := inst.ReadFile(path.Join("events", system, n, "format"))
			if err != nil {
				return nil, fmt.Errorf("reading the format of %s:%s: %w", system, n, bareErr(err))
			}
			f, err := parseFormat(system, string(b))
			if err != nil {
				return nil, err
			}
			r.dec.formats[f.id] = f
		}
	}
	pageSize := os.Getpagesize()
	if b, err := inst.ReadFile("buffer_subbuf_size_kb"); err == nil {
		if kb, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && kb > 0 {
			pageSize = kb << 10
		}
	}
	cpus, err := fs.Glob(inst.FS(), "per_cpu/cpu*")
	if err != nil || len(cpus) == 0 {
		return nil, errors.New("no per_cpu directories")
	}
	for _, d := range cpus {
		n, err := strconv.Atoi(strings.TrimPrefix(path.Base(d), "cpu"))
		if err != nil {
			continue
		}
		// O_NONBLOCK: a read of an empty buffer fails with EAGAIN at once.
		f, err := inst.OpenFile(path.Join(d, "trace_pipe_raw"), os.O_RDONLY|unix.O_NONBLOCK, 0)
		if err != nil {
			return nil, fmt.Errorf("opening %s/trace_pipe_raw: %w", d, bareErr(err))
		}
		r.cpus = append(r.cpus, &rawCPU{cpu: n, f: f, page: make([]byte, pageSize)})
	}
	sort.Slice(r.cpus, func(i, j int) bool { return r.cpus[i].cpu < r.cpus[j].cpu })
	return r, nil
}

// pump hands every event the buffers hold now to fn, in time order, and
// returns how many it handed.
func (r *rawReader) pump(fn func(ev rawEvent, cpu int) error) (int, error) {
	for _, c := range r.cpus {
		if c.next >= len(c.evs) {
			if err := r.fill(c); err != nil {
				return 0, err
			}
		}
	}
	n := 0
	for {
		var best *rawCPU
		for _, c := range r.cpus {
			if c.next < len(c.evs) && (best == nil || c.evs[c.next].ts < best.evs[best.next].ts) {
				best = c
			}
		}
		if best == nil {
			return n, nil
		}
		ev := best.evs[best.next]
		best.next++
		if err := fn(ev, best.cpu); err != nil {
			return n, err
		}
		n++
		if best.next >= len(best.evs) {
			if err := r.fill(best); err != nil {
				return n, err
			}
		}
	}
}

// read reads one page without waiting: EAGAIN when the buffer is empty.
func (r *rawCPU) read() (int, error) {
	rc, err := r.f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var (
		n    int
		rerr error
	)
	// Returning true makes RawConn.Read try once and never park.
	if err := rc.Read(func(fd uintptr) bool {
		n, rerr = unix.Read(int(fd), r.page)
		return true
	}); err != nil {
		return 0, err
	}
	return n, rerr
}

// fill reads c's next page that holds events, if the buffer has one.
func (r *rawReader) fill(c *rawCPU) error {
	c.evs, c.next = c.evs[:0], 0
	for {
		n, err := c.read()
		switch {
		case errors.Is(err, unix.EAGAIN):
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return fmt.Errorf("reading per_cpu/cpu%d/trace_pipe_raw: %w", c.cpu, err)
		case n == 0:
			return nil
		}
		var lost uint64
		var unknown bool
		c.evs, lost, unknown, err = parsePage(c.evs, c.page[:n], r.hdr)
		if err != nil {
			return fmt.Errorf("reading per_cpu/cpu%d/trace_pipe_raw: %w", c.cpu, err)
		}
		r.lost += lost
		if unknown {
			r.lostPages++
		}
		if len(c.evs) > 0 {
			return nil
		}
	}
}

// close closes the per-CPU files.
func (r *rawReader) close() error {
	var errs []error
	for _, c := range r.cpus {
		if err := c.f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
