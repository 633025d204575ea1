package tcpdump

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ktrace-dev/kubectl-trace/hooks"
)

func resolved(t *testing.T, given map[string]string) map[string]string {
	t.Helper()
	d, ok := hooks.Lookup("tcpdump")
	if !ok {
		t.Fatal("no tcpdump hook in the catalogue")
	}
	args, err := d.ResolveArgs(given)
	if err != nil {
		t.Fatal(err)
	}
	return args
}

func TestArgv(t *testing.T) {
	common := []string{"-i", "any", "-s", "262144", "-nn", "--immediate-mode", "-B", "16384", "-Z", "tcpdump"}
	tests := []struct {
		name   string
		output string
		given  map[string]string
		want   []string
	}{
		{name: "pcap, defaults", output: hooks.OutputPCAP,
			want: append(append([]string{}, common...), "-U", "-w", "-")},
		{name: "text, defaults", output: hooks.OutputText,
			want: append(append([]string{}, common...), "-l")},
		{name: "json has epoch timestamps", output: hooks.OutputJSON,
			want: append(append([]string{}, common...), "-l", "-tt")},
		{
			name: "filter is one argument after --, as the user wrote it", output: hooks.OutputPCAP,
			given: map[string]string{"filter": "tcp port 8080 and (host 10.0.0.7 or net 10.1.0.0/16)", "interface": "eth0", "snaplen": "128"},
			want: []string{"-i", "eth0", "-s", "128", "-nn", "--immediate-mode", "-B", "16384", "-Z", "tcpdump", "-U", "-w", "-",
				"--", "tcp port 8080 and (host 10.0.0.7 or net 10.1.0.0/16)"},
		},
		{
			name: "shell syntax means nothing: no shell runs", output: hooks.OutputText,
			given: map[string]string{"filter": "port 80; rm -rf / $(id) `id` | x"},
			want:  append(append([]string{}, common...), "-l", "--", "port 80; rm -rf / $(id) `id` | x"),
		},
		{
			name: "a later word starting with '-' stays in the filter", output: hooks.OutputText,
			given: map[string]string{"filter": "tcp and -w /etc/passwd"},
			want:  append(append([]string{}, common...), "-l", "--", "tcp and -w /etc/passwd"),
		},
		{
			name: "blank filter is no filter", output: hooks.OutputText,
			given: map[string]string{"filter": "  "},
			want:  append(append([]string{}, common...), "-l"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Argv(tt.output, resolved(t, tt.given))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("argv (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := Argv("xml", nil); err == nil || !strings.Contains(err.Error(), `no "xml" output`) {
		t.Errorf("Argv(xml) error = %v", err)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		line string
		kind lineKind
		n    uint64
	}{
		{"tcpdump: listening on any, link-type LINUX_SLL2 (Linux cooked v2), snapshot length 262144 bytes", lineListening, 0},
		{"listening on eth0, link-type EN10MB (Ethernet), snapshot length 96 bytes", lineListening, 0},
		{"tcpdump: data link type LINUX_SLL2", lineNoise, 0},
		{"tcpdump: verbose output suppressed, use -v[v]... for full protocol decode", lineNoise, 0},
		{"12 packets captured", lineCaptured, 12},
		{"1 packet captured", lineCaptured, 1},
		{"14 packets received by filter", lineReceived, 14},
		{"3 packets dropped by kernel", lineDropped, 3},
		{"0 packets dropped by kernel\n", lineDropped, 0},
		{"5 packets dropped by interface", lineOther, 0},
		{"tcpdump: can't parse filter expression: syntax error", lineOther, 0},
		{"tcpdump: eth9: No such device exists", lineOther, 0},
		{"99999999999999999999999 packets captured", lineOther, 0},
	}
	for _, tt := range tests {
		kind, n := classify(tt.line)
		if kind != tt.kind || n != tt.n {
			t.Errorf("classify(%q) = %v, %d; want %v, %d", tt.line, kind, n, tt.kind, tt.n)
		}
	}
}

func TestLogLine(t *testing.T) {
	for _, tt := range []struct{ target, line, want string }{
		{"", "tcpdump: listening on any, link-type LINUX_SLL2", "tcpdump: listening on any, link-type LINUX_SLL2"},
		{"", "12 packets captured\n", "tcpdump: 12 packets captured"},
		{"ns/web/app", "tcpdump: listening on eth0", "tcpdump[ns/web/app]: listening on eth0"},
		{"ns/web/app", "0 packets dropped by kernel", "tcpdump[ns/web/app]: 0 packets dropped by kernel"},
	} {
		if got := logLine(tt.target, tt.line); got != tt.want {
			t.Errorf("logLine(%q, %q) = %q, want %q", tt.target, tt.line, got, tt.want)
		}
	}
}

func TestParseTimed(t *testing.T) {
	for _, tt := range []struct {
		line string
		t    float64
		rest string
		ok   bool
	}{
		{"1767323045.123456 eth0  In  IP 10.0.0.1.80 > 10.0.0.2.5000: Flags [S], length 0\n", 1767323045.123456,
			"eth0  In  IP 10.0.0.1.80 > 10.0.0.2.5000: Flags [S], length 0", true},
		{"1767323045.000001 IP6 ::1.8080 > ::1.40000: tcp 0", 1767323045.000001, "IP6 ::1.8080 > ::1.40000: tcp 0", true},
		{"04:50:57.495619 lo In IP x", 0, "04:50:57.495619 lo In IP x", false},
		{"", 0, "", false},
	} {
		ts, rest, ok := parseTimed([]byte(tt.line))
		if ts != tt.t || string(rest) != tt.rest || ok != tt.ok {
			t.Errorf("parseTimed(%q) = %v, %q, %v; want %v, %q, %v", tt.line, ts, rest, ok, tt.t, tt.rest, tt.ok)
		}
	}
}

func TestReadLines(t *testing.T) {
	long := strings.Repeat("x", 200<<10)
	in := "one\ntwo\n" + long + "\nlast without newline"
	var got []string
	err := readLines(iotest.OneByteReader(strings.NewReader(in)), func(l []byte) error {
		got = append(got, string(l))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"one\n", "two\n", long + "\n", "last without newline\n"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}

	// After fn fails, the rest is read (the writer never blocks) and the
	// error is returned.
	r := &countingReader{r: strings.NewReader("a\nb\nc\n")}
	calls := 0
	errStop := errors.New("stdout gone")
	err = readLines(r, func([]byte) error { calls++; return errStop })
	if !errors.Is(err, errStop) || calls != 1 || r.eof != true {
		t.Errorf("readLines after a failing fn: err %v, %d calls, read to the end %v", err, calls, r.eof)
	}
}

type countingReader struct {
	r   io.Reader
	eof bool
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF {
		c.eof = true
	}
	return n, err
}

// A JSON event's text is the line text output shows: tcpdump's default
// timestamp, the time of day to the microsecond, and the rest as it is.
func TestTextLine(t *testing.T) {
	berlin := time.FixedZone("CET", 3600)
	for _, tt := range []struct {
		line string
		loc  *time.Location
		want string
	}{
		{"1764683712.012345 IP 10.0.0.1.8080 > 10.0.0.2.53124: Flags [S.], length 0\n", time.UTC,
			"13:55:12.012345 IP 10.0.0.1.8080 > 10.0.0.2.53124: Flags [S.], length 0"},
		{"1764683712.012345 lo In  IP 127.0.0.1.7101 > 127.0.0.1.41234: Flags [P.]", berlin,
			"14:55:12.012345 lo In  IP 127.0.0.1.7101 > 127.0.0.1.41234: Flags [P.]"},
		{"no timestamp here\n", time.UTC, "no timestamp here"},
		{"1764683712 IP x", time.UTC, "1764683712 IP x"},
	} {
		if got := textLine([]byte(tt.line), tt.loc); got != tt.want {
			t.Errorf("textLine(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}
}

// The catalogue's tcpdump hooks are the ones this runtime runs: each
// writes only outputs Argv knows, and its parameters are the ones Argv
// reads.
func TestDescriptorArgv(t *testing.T) {
	var names []string
	for _, d := range hooks.Catalogue() {
		if d.Kind != hooks.KindTcpdump {
			continue
		}
		names = append(names, d.Name)
		for _, p := range d.Params {
			switch p.Name {
			case hooks.TcpdumpFilter, hooks.TcpdumpInterface, hooks.TcpdumpSnaplen:
			default:
				t.Errorf("%s: parameter %q, which Argv does not read", d.Name, p.Name)
			}
		}
		args, err := d.ResolveArgs(nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range d.Outputs {
			if _, err := Argv(o, args); err != nil {
				t.Errorf("%s: output %s: %v", d.Name, o, err)
			}
		}
	}
	if diff := cmp.Diff([]string{"tcpdump"}, names); diff != "" {
		t.Errorf("tcpdump hooks of the catalogue (-runtime +catalogue):\n%s", diff)
	}
}
