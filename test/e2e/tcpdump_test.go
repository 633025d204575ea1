//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// servePod runs `<comm> serve :<port>`, which answers every TCP connection.
func servePod(t *testing.T, name, comm, port string) *corev1.Pod {
	t.Helper()
	return createAndWait(t, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: corev1.PodSpec{
			NodeName:                      nodeName,
			TerminationGracePeriodSeconds: ptr.To(int64(1)),
			Containers: []corev1.Container{{
				Name: "app", Image: workloadImage, ImagePullPolicy: corev1.PullNever,
				Command: []string{"/usr/bin/" + comm, "serve", ":" + port},
			}},
		},
	})
}

// clientPod connects to web:8080 and to noise:9090 five times a second,
// with busybox nc.
func clientPod(t *testing.T, web, noise string) {
	t.Helper()
	createAndWait(t, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "client", Namespace: namespace},
		Spec: corev1.PodSpec{
			NodeName:                      nodeName,
			TerminationGracePeriodSeconds: ptr.To(int64(1)),
			Containers: []corev1.Container{{
				Name: "app", Image: workloadImage, ImagePullPolicy: corev1.PullNever,
				Command: []string{"/bin/sh", "-c",
					"while :; do echo hi | nc -w 1 " + web + " 8080; echo hi | nc -w 1 " + noise + " 9090; sleep 0.2; done"},
			}},
		},
	})
}

// tshark reads a capture with a display filter and returns one line per
// packet (source, destination, ports); it fails the test when tshark finds
// the file damaged.
func tshark(t *testing.T, file, filter string) []string {
	t.Helper()
	cmd := exec.Command("tshark", "-r", file, "-Y", filter, "-T", "fields",
		"-e", "ip.src", "-e", "tcp.srcport", "-e", "ip.dst", "-e", "tcp.dstport")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		// tshark warns about root; anything else is about the file.
		if line != "" && !strings.HasPrefix(line, "Running as user") {
			t.Errorf("tshark -r %s: %s", filepath.Base(file), line)
		}
	}
	if err != nil {
		t.Fatalf("tshark -r %s -Y %q: %v\n%s", file, filter, err, stderr.String())
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// traceToFile runs kubectl trace with stdout to a file, as `> cap.pcap`.
func traceToFile(t *testing.T, file string, args ...string) (stderr string) {
	t.Helper()
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := traceCmd(args...)
	var errOut strings.Builder
	cmd.Stdout, cmd.Stderr = f, &errOut
	err = cmd.Run()
	t.Logf("kubectl trace %s\nstderr:\n%s", strings.Join(args, " "), errOut.String())
	if err != nil {
		t.Fatalf("kubectl trace: %v", err)
	}
	return errOut.String()
}

// tcpdumpRow finds the final summary's row for web/app, ended as want,
// with a non-zero event count.
func tcpdumpRow(stderr, ended string) bool {
	for _, line := range strings.Split(stderr, "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && strings.HasSuffix(f[0], "/web/app") && f[1] == "tcpdump" && f[2] != "0" && strings.Contains(line, ended) {
			return true
		}
	}
	return false
}

// tcpdump's text line: time of day, interface and direction (-i any), then
// the decoding with numeric addresses.
var tcpdumpLine = regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{6} \S+ +(In|Out|M|B|P) `)

func TestTcpdump(t *testing.T) {
	web := servePod(t, "web", "ktalpha", "8080")
	noise := servePod(t, "noise", "ktbravo", "9090")
	clientPod(t, web.Status.PodIP, noise.Status.PodIP)
	webIP := web.Status.PodIP
	dir := t.TempDir()

	t.Run("pcap holds the target's connections only", func(t *testing.T) {
		file := filepath.Join(dir, "cap.pcap")
		stderr := traceToFile(t, file, "pod/web", "--hook", "tcpdump", "-o", "pcap", "--duration", "5s")
		all := tshark(t, file, "tcp")
		toWeb := tshark(t, file, "tcp.port==8080")
		t.Logf("%d TCP packets, %d on port 8080; first: %v", len(all), len(toWeb), toWeb[:min(3, len(toWeb))])
		if len(toWeb) < 10 {
			t.Errorf("%d packets on port 8080 in 5 s; the client connects 5 times a second", len(toWeb))
		}
		syn := tshark(t, file, "tcp.flags.syn==1 && tcp.flags.ack==0 && ip.dst=="+webIP+" && tcp.dstport==8080")
		if len(syn) == 0 {
			t.Errorf("no connection to %s:8080 in the capture", webIP)
		}
		if noisy := tshark(t, file, "tcp.port==9090 || ip.addr=="+noise.Status.PodIP); len(noisy) != 0 {
			t.Errorf("the noise pod's traffic is in web's capture: %v", noisy[:min(3, len(noisy))])
		}
		if !strings.Contains(stderr, "tcpdump: listening on any") || !strings.Contains(stderr, "packets dropped by kernel") {
			t.Errorf("tcpdump's own lines are not on stderr")
		}
		if !tcpdumpRow(stderr, "duration reached") {
			t.Errorf("no summary row for web/app")
		}
		assertClean(t, stderr)
	})

	t.Run("text is tcpdump's lines", func(t *testing.T) {
		r := trace(t, "pod/web", "--hook", "tcpdump", "--duration", "3s")
		if r.code != 0 {
			t.Fatalf("exit %d", r.code)
		}
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		to8080 := 0
		for _, l := range lines {
			if !tcpdumpLine.MatchString(l) {
				t.Errorf("not a tcpdump line: %q", l)
			}
			if strings.Contains(l, " > "+webIP+".8080: ") {
				to8080++
			}
			if strings.Contains(l, ".9090") || strings.Contains(l, noise.Status.PodIP+".") {
				t.Errorf("noise in web's capture: %q", l)
			}
		}
		if to8080 < 5 {
			t.Errorf("%d packets to %s.8080 in %d lines:\n%s", to8080, webIP, len(lines), r.stdout)
		}
		assertClean(t, r.stderr)
	})

	t.Run("json with a filter", func(t *testing.T) {
		r := trace(t, "pod/web", "--hook", "tcpdump", "-o", "json", "--duration", "3s",
			"--arg", "filter=tcp dst port 8080 and tcp[tcpflags] & tcp-syn != 0", "--arg", "snaplen=128")
		if r.code != 0 {
			t.Fatalf("exit %d", r.code)
		}
		n := 0
		for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			var e wire.Event
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("not a JSON event: %q: %v", line, err)
			}
			if e.Event != "packet" || e.Pod != "web" || e.Namespace != namespace || e.Node != nodeName || e.Time == 0 ||
				!strings.Contains(e.Fields["line"], "> "+webIP+".8080: Flags [S]") {
				t.Fatalf("event %+v", e)
			}
			n++
		}
		if n < 5 {
			t.Errorf("%d SYNs to port 8080 in 3 s", n)
		}
		assertClean(t, r.stderr)
	})

	t.Run("max size ends with a readable pcap", func(t *testing.T) {
		file := filepath.Join(dir, "max.pcap")
		// The limit ends the session long before the duration would.
		stderr := traceToFile(t, file, "pod/web", "--hook", "tcpdump", "-o", "pcap", "--max-size", "20000", "--duration", "2m")
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 20000 || fi.Size() < 10000 {
			t.Errorf("capture of %d bytes for --max-size 20000", fi.Size())
		}
		if n := len(tshark(t, file, "tcp.port==8080")); n == 0 {
			t.Errorf("no packet on port 8080")
		}
		if !tcpdumpRow(stderr, "max size reached") {
			t.Errorf("no summary row ending with max size reached")
		}
		assertClean(t, stderr)
	})

	t.Run("bad filter fails before any data", func(t *testing.T) {
		r := trace(t, "pod/web", "--hook", "tcpdump", "--arg", "filter=tcp port eighty", "--duration", "5s")
		if r.code == 0 || !strings.Contains(r.stderr, "unknown port 'eighty'") || r.stdout != "" {
			t.Errorf("exit %d, stdout %q", r.code, r.stdout)
		}
		assertClean(t, r.stderr)
	})
}
