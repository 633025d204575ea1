package ftrace

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// compareRawText decodes pages (per CPU: each page as a little-endian u32
// length and the bytes read) and checks that every event reads as the
// kernel's text of the same buffer says.
func compareRawText(t *testing.T, hdr pageHeader, dec *decoder, pages map[int][]byte, text string) {
	t.Helper()
	raw := map[int][]Line{}
	var lost uint64
	for cpu, b := range pages {
		for len(b) >= 4 {
			n := int(binary.LittleEndian.Uint32(b))
			page := b[4 : 4+n]
			b = b[4+n:]
			evs, l, _, err := parsePage(nil, page, hdr)
			if err != nil {
				t.Fatalf("cpu %d: %v", cpu, err)
			}
			lost += l
			for _, ev := range evs {
				var line Line
				if !dec.line(&line, ev, cpu) {
					t.Fatalf("cpu %d: an event of unknown type %d", cpu, binary.LittleEndian.Uint16(ev.data))
				}
				raw[cpu] = append(raw[cpu], line)
			}
		}
	}
	kernel := map[int][]Line{}
	for _, s := range strings.Split(text, "\n") {
		if strings.HasPrefix(s, "#") || strings.TrimSpace(s) == "" {
			continue
		}
		l, err := ParseLine(s)
		if err != nil {
			t.Fatalf("kernel's line %q: %v", s, err)
		}
		kernel[l.CPU] = append(kernel[l.CPU], l)
	}
	var cpus []int
	total := 0
	for cpu := range kernel {
		cpus = append(cpus, cpu)
		total += len(kernel[cpu])
	}
	sort.Ints(cpus)
	if total < 50 {
		t.Fatalf("only %d events in the kernel's text", total)
	}
	events := map[string]int{}
	for _, cpu := range cpus {
		k, r := kernel[cpu], raw[cpu]
		if len(k) != len(r) {
			t.Errorf("cpu %d: %d events in the kernel's text, %d decoded", cpu, len(k), len(r))
		}
		for i := 0; i < min(len(k), len(r)); i++ {
			events[k[i].Event]++
			// trace prints microseconds, rounded from ns (ns2usecs).
			us := math.Round(r[i].Time * 1e6)
			if k[i].Event != r[i].Event || k[i].Details != r[i].Details || k[i].TaskPID != r[i].TaskPID || math.Abs(us-k[i].Time*1e6) > 0.5 {
				t.Errorf("cpu %d event %d:\nkernel  %.6f %d %s: %s\ndecoded %.9f %d %s: %s", cpu, i,
					k[i].Time, k[i].TaskPID, k[i].Event, k[i].Details, r[i].Time, r[i].TaskPID, r[i].Event, r[i].Details)
				return
			}
		}
	}
	t.Logf("%d events on %d cpus match, lost %d: %v", total, len(cpus), lost, events)
}

// The capture in testdata/raw (TestRawMatchesText writes it): pages of
// trace_pipe_raw decode to what the kernel printed for the same buffer.
func TestRawCapture(t *testing.T) {
	dir := filepath.Join("testdata", "raw")
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	hdr, err := parsePageHeader(read("header_page"))
	if err != nil {
		t.Fatal(err)
	}
	dec := &decoder{formats: map[uint16]*eventFormat{}}
	formats, _ := filepath.Glob(filepath.Join(dir, "*.format"))
	for _, f := range formats {
		sys, _, _ := strings.Cut(filepath.Base(f), ".")
		ef, err := parseFormat(sys, read(filepath.Base(f)))
		if err != nil {
			t.Fatal(err)
		}
		dec.formats[ef.id] = ef
	}
	pages := map[int][]byte{}
	files, _ := filepath.Glob(filepath.Join(dir, "cpu*.pages"))
	for _, f := range files {
		n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "cpu"), ".pages"))
		pages[n] = []byte(read(filepath.Base(f)))
	}
	if len(formats) == 0 || len(pages) == 0 {
		t.Fatal("no capture in testdata/raw")
	}
	compareRawText(t, hdr, dec, pages, read("trace.txt"))
}
