package debian

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseURIs(t *testing.T) {
	out := `Reading package lists...
'http://deb.debian.org/debian/pool/main/t/tcpdump/tcpdump_4.99.3-1_amd64.deb' tcpdump_4.99.3-1_amd64.deb 467168 MD5Sum:00
'http://deb.debian.org/debian/pool/main/a/audit/libaudit-common_3.0.9-1_all.deb' libaudit-common_1%3a3.0.9-1_all.deb 10448 MD5Sum:c1
`
	got, err := ParseURIs(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"libaudit-common_1%3a3.0.9-1_all.deb", "tcpdump_4.99.3-1_amd64.deb"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"'http://x/a.deb' ../../etc/passwd.deb 1 MD5Sum:0", "'http://x/a.deb'", "'http://x/a.deb' a.tar 1 x"} {
		if _, err := ParseURIs(bad + "\n"); err == nil {
			t.Errorf("ParseURIs(%q) took a bad line", bad)
		}
	}
}

// TestFetchNative fetches a small package with its closure from Debian's
// archive for this machine's architecture, twice: the second fetch must
// download nothing and return the same files.
func TestFetchNative(t *testing.T) {
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Fatal("apt-get is missing: the project builds on Debian (bookworm)")
	}
	cache := t.TempDir()
	ctx := context.Background()
	files, err := Fetch(ctx, NativeArch(), cache, "libpcap0.8")
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = filepath.Base(f)
	}
	if !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "libpcap0.8_") }) ||
		!slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "libc6_") }) {
		t.Fatalf("closure of libpcap0.8 lacks the package or libc6: %v", names)
	}
	pool := filepath.Join(cache, "debs", NativeArch())
	before, err := os.Stat(files[0])
	if err != nil {
		t.Fatal(err)
	}
	again, err := Fetch(ctx, NativeArch(), cache, "libpcap0.8")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(files, again); diff != "" {
		t.Errorf("second fetch (-first +second):\n%s", diff)
	}
	after, err := os.Stat(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("second fetch downloaded %s again", files[0])
	}
	dir := t.TempDir()
	var pcap string
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), "libpcap0.8_") {
			pcap = f
		}
	}
	if err := Unpack(ctx, dir, pcap); err != nil {
		t.Fatal(err)
	}
	libs, _ := filepath.Glob(filepath.Join(dir, "usr/lib/*/libpcap.so.*"))
	if len(libs) == 0 {
		t.Errorf("unpacked libpcap0.8 into %s holds no libpcap.so (pool %s)", dir, pool)
	}
}
