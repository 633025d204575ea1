//go:build linux && privileged

package runner

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/attach"
	"github.com/ktrace-dev/kubectl-trace/hooks/tcpdump"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"github.com/ktrace-dev/kubectl-trace/test/testenv"
)

const (
	tdTargetPort   = 7201
	tdOutsiderPort = 7202
)

// splitStderr separates the helper's status lines from the lines a tool
// printed (passed on as they are).
func splitStderr(t *testing.T, stderr string) (statuses []wire.Status, plain []string) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(stderr))
	for sc.Scan() {
		if s, ok := wire.ParseStatus(sc.Bytes()); ok {
			statuses = append(statuses, s)
		} else {
			plain = append(plain, sc.Text())
		}
	}
	return statuses, plain
}

func tcpdumpRequest(output, containerID string, args map[string]string) wire.Request {
	r := privRequest(output, containerID)
	r.Hook, r.Args = "tcpdump", args
	return r
}

// A target in a container of its own (cgroups, network namespace) connects
// to its port over loopback; an outsider in another namespace does the
// same. The whole session (resolve, tcpdump in the target's namespace,
// ready, go, stream, stop on the end of stdin, stats) captures the
// target's connections only.
func TestRunTcpdump(t *testing.T) {
	c := testenv.NewContainer(t)
	target := testenv.StartPeer(t, tdTargetPort, "target-hello", 0)
	c.Add(t, target.PID())
	testenv.StartPeer(t, tdOutsiderPort, "outsider-hello", 0)
	attachers := map[string]attach.Runtime{hooks.KindTcpdump: tcpdump.Runtime{}}

	t.Run("pcap", func(t *testing.T) {
		req := tcpdumpRequest(hooks.OutputPCAP, "containerd://"+c.ID, nil)
		s := runSession(t, req, Config{Runtimes: attachers}, func() { time.Sleep(1500 * time.Millisecond) })
		if s.err != nil {
			t.Fatalf("Run: %v\nstderr:\n%s", s.err, s.stderr.String())
		}
		statuses, plain := splitStderr(t, s.stderr.String())
		if diff := cmp.Diff([]string{"ready", "resolved", "started", "stats"}, kinds(statuses)); diff != "" {
			t.Errorf("status kinds (-want +got):\n%s", diff)
		}
		file := filepath.Join(t.TempDir(), "cap.pcap")
		if err := os.WriteFile(file, []byte(s.stdout.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		text := testenv.ReadPcap(t, file)
		packets := strings.Count(text, " IP 127.0.0.1.")
		stats := statuses[len(statuses)-1]
		t.Logf("%d bytes, %d packets, stats %+v; tcpdump said:\n%s", len(s.stdout.String()), packets, stats, strings.Join(plain, "\n"))
		if !strings.Contains(text, fmt.Sprintf("> 127.0.0.1.%d: Flags [S]", tdTargetPort)) || !strings.Contains(text, "target-hello") {
			t.Errorf("the target's connections are not in the capture")
		}
		if strings.Contains(text, fmt.Sprintf("127.0.0.1.%d", tdOutsiderPort)) || strings.Contains(text, "outsider-hello") {
			t.Errorf("the outsider's connections are in the capture")
		}
		if stats.Events != uint64(packets) || packets == 0 {
			t.Errorf("stats events %d, want the %d packets in the file", stats.Events, packets)
		}
		if len(plain) != 4 || !strings.HasPrefix(plain[0], "tcpdump: listening on any") ||
			plain[1] != fmt.Sprintf("tcpdump: %d packets captured", packets) || !strings.HasSuffix(plain[3], "packets dropped by kernel") {
			t.Errorf("tcpdump's own lines on stderr:\n%s", strings.Join(plain, "\n"))
		}
	})

	t.Run("text", func(t *testing.T) {
		req := tcpdumpRequest(hooks.OutputText, "containerd://"+c.ID, map[string]string{"filter": "tcp[tcpflags] & tcp-syn != 0"})
		s := runSession(t, req, Config{Runtimes: attachers}, func() { time.Sleep(time.Second) })
		if s.err != nil {
			t.Fatalf("Run: %v\nstderr:\n%s", s.err, s.stderr.String())
		}
		lines := strings.Split(strings.TrimSuffix(s.stdout.String(), "\n"), "\n")
		for _, l := range lines {
			if !strings.Contains(l, fmt.Sprintf("127.0.0.1.%d", tdTargetPort)) || !strings.Contains(l, "Flags [S") {
				t.Errorf("line %q", l)
			}
		}
		statuses, _ := splitStderr(t, s.stderr.String())
		if st := statuses[len(statuses)-1]; st.Events != uint64(len(lines)) || len(lines) < 10 {
			t.Errorf("%d lines, stats %+v", len(lines), st)
		}
	})

	t.Run("json", func(t *testing.T) {
		req := tcpdumpRequest(hooks.OutputJSON, "containerd://"+c.ID, map[string]string{"interface": "lo", "filter": "tcp"})
		s := runSession(t, req, Config{Runtimes: attachers}, func() { time.Sleep(time.Second) })
		if s.err != nil {
			t.Fatalf("Run: %v\nstderr:\n%s", s.err, s.stderr.String())
		}
		n := 0
		sc := bufio.NewScanner(strings.NewReader(s.stdout.String()))
		for sc.Scan() {
			var ev wire.Event
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Fatalf("%q: %v", sc.Text(), err)
			}
			if ev.Event != "packet" || ev.Pod != "kt" || ev.Time == 0 || !strings.Contains(ev.Fields["line"], fmt.Sprintf("127.0.0.1.%d", tdTargetPort)) {
				t.Fatalf("event %s", sc.Text())
			}
			n++
		}
		if n < 10 {
			t.Errorf("%d events", n)
		}
	})

	// The limits stop the session by itself, cleanly, with a pcap that
	// tcpdump reads to the end.
	for _, tt := range []struct {
		name                string
		maxEvents, maxBytes int64
		ended               string
	}{
		{name: "max size", maxBytes: 10000, ended: "max size reached"},
		{name: "max events", maxEvents: 7, ended: "max events reached"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := tcpdumpRequest(hooks.OutputPCAP, "containerd://"+c.ID, nil)
			req.MaxEvents, req.MaxBytes = tt.maxEvents, tt.maxBytes
			// stdin ends after 3 s; the limit comes long before.
			s := runSession(t, req, Config{Runtimes: attachers}, func() { time.Sleep(3 * time.Second) })
			if s.err != nil {
				t.Fatalf("Run: %v\nstderr:\n%s", s.err, s.stderr.String())
			}
			statuses, _ := splitStderr(t, s.stderr.String())
			stats := statuses[len(statuses)-1]
			file := filepath.Join(t.TempDir(), "cap.pcap")
			if err := os.WriteFile(file, []byte(s.stdout.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			packets := strings.Count(testenv.ReadPcap(t, file), " IP 127.0.0.1.")
			t.Logf("%d bytes, %d packets, stats %+v", len(s.stdout.String()), packets, stats)
			if stats.Seconds > 2 {
				t.Errorf("the session lasted %.1f s: the limit did not end it", stats.Seconds)
			}
			if stats.Kind != wire.StatusStats || stats.Ended != tt.ended || stats.Events != uint64(packets) {
				t.Errorf("stats %+v, want ended %q and %d events", stats, tt.ended, packets)
			}
			if tt.maxBytes > 0 && (int64(len(s.stdout.String())) > tt.maxBytes || len(s.stdout.String()) < 5000) {
				t.Errorf("%d bytes for a limit of %d", len(s.stdout.String()), tt.maxBytes)
			}
			if tt.maxEvents > 0 && int64(packets) != tt.maxEvents {
				t.Errorf("%d packets for a limit of %d", packets, tt.maxEvents)
			}
		})
	}
}
