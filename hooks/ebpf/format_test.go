//go:build linux

package ebpf

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

func TestRecordDetails(t *testing.T) {
	var r record
	r.add("path", "/etc/hosts")
	r.int("result", -2)
	r.uint("count", 7)
	r.add("argv", `sh -c "echo hi"`)
	r.add("empty", "")
	r.add("eq", "a=b")
	r.add("ctl", "a\x01b")
	want := `path=/etc/hosts result=-2 count=7 argv="sh -c \"echo hi\"" empty="" eq="a=b" ctl="a\x01b"`
	if got := string(r.details(nil)); got != want {
		t.Errorf("details:\n got %s\nwant %s", got, want)
	}
	wantFields := map[string]string{"path": "/etc/hosts", "result": "-2", "count": "7", "argv": `sh -c "echo hi"`, "empty": "", "eq": "a=b", "ctl": "a\x01b"}
	if diff := cmp.Diff(wantFields, r.fields()); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
}

func TestArgv(t *testing.T) {
	tests := []struct {
		name      string
		args      string
		truncated bool
		want      string
	}{
		{name: "plain", args: "ls\x00-l\x00/tmp\x00", want: "ls -l /tmp"},
		{name: "quoted", args: "sh\x00-c\x00echo a b\x00\x00", want: `sh -c "echo a b" ""`},
		{name: "cut by the kernel", args: "cat\x00/very/long", truncated: true, want: "cat /very/long ..."},
		{name: "cut mid-argument", args: "cat\x00/very/long", want: "cat /very/long ..."},
		{name: "empty", args: "", want: `""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := argv([]byte(tt.args), tt.truncated); got != tt.want {
				t.Errorf("argv(%q, %v) = %q, want %q", tt.args, tt.truncated, got, tt.want)
			}
		})
	}
	many := ""
	for i := 0; i < maxArgs+5; i++ {
		many += "a\x00"
	}
	got := argv([]byte(many), false)
	if want := len("a ")*maxArgs - 1 + len(" ..."); len(got) != want {
		t.Errorf("argv of %d arguments = %q (%d bytes), want %d arguments and ...", maxArgs+5, got, len(got), maxArgs)
	}
}

func TestOpenFlags(t *testing.T) {
	for flags, want := range map[uint64]string{
		unix.O_RDONLY:  "O_RDONLY",
		unix.O_CLOEXEC: "O_RDONLY|O_CLOEXEC",
		unix.O_WRONLY | unix.O_CREAT | unix.O_TRUNC: "O_WRONLY|O_CREAT|O_TRUNC",
		unix.O_RDWR | unix.O_NONBLOCK:               "O_RDWR|O_NONBLOCK",
		unix.O_DIRECTORY | unix.O_PATH:              "O_RDONLY|O_DIRECTORY|O_PATH",
		unix.O_RDWR | unix.O_TMPFILE:                "O_RDWR|O_TMPFILE",
		unix.O_SYNC:                                 "O_RDONLY|O_SYNC",
		unix.O_DSYNC:                                "O_RDONLY|O_DSYNC",
		1 << 40:                                     "O_RDONLY|0x10000000000",
	} {
		if got := openFlags(flags); got != want {
			t.Errorf("openFlags(%#o) = %q, want %q", flags, got, want)
		}
	}
}

func TestErrnoName(t *testing.T) {
	for ret, want := range map[int64]string{-2: "ENOENT", -13: "EACCES", 3: "", 0: "", -4095: "E4095"} {
		if got := errnoName(ret); got != want {
			t.Errorf("errnoName(%d) = %q, want %q", ret, got, want)
		}
	}
}

func TestIPString(t *testing.T) {
	v4 := [16]uint8{127, 0, 0, 1}
	v6 := [16]uint8{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	for _, tt := range []struct {
		family uint16
		addr   [16]uint8
		want   string
	}{
		{2, v4, "127.0.0.1"},
		{10, v6, "2001:db8::1"},
		{10, [16]uint8{10: 0xff, 11: 0xff, 12: 10, 13: 0, 14: 0, 15: 7}, "::ffff:10.0.0.7"},
	} {
		if got := ipString(tt.family, tt.addr); got != tt.want {
			t.Errorf("ipString(%d, %v) = %q, want %q", tt.family, tt.addr, got, tt.want)
		}
	}
	if familyName(2) != "ipv4" || familyName(10) != "ipv6" || familyName(1) != "1" {
		t.Error("familyName")
	}
}

func TestSyscallName(t *testing.T) {
	for _, tt := range []struct {
		arch string
		nr   int
		want string
	}{
		{"amd64", 110, "getppid"},
		{"amd64", 257, "openat"},
		{"arm64", 56, "openat"},
		{"arm64", 173, "getppid"},
		{"amd64", 1023, "syscall_1023"},
	} {
		if got := syscallName(tt.arch, tt.nr); got != tt.want {
			t.Errorf("syscallName(%s, %d) = %q, want %q", tt.arch, tt.nr, got, tt.want)
		}
	}
}
