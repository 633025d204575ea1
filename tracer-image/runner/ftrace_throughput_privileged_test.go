//go:build linux && privileged

package runner

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"github.com/ktrace-dev/kubectl-trace/test/testenv"
)

// countingWriter counts the lines that hold "name=getppid" (text) or
// "\"name\":\"getppid\"" (JSON) and throws the data away.
type countingWriter struct {
	mu    sync.Mutex
	want  []byte
	tail  []byte
	n     int
	bytes int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.bytes += int64(len(p))
	// A match may straddle two writes: look at the end of the last one too.
	buf := append(w.tail, p...)
	w.n += bytes.Count(buf, w.want)
	keep := len(w.want) - 1
	if len(buf) < keep {
		keep = len(buf)
	}
	// Do not count a match in the kept tail twice: it cannot hold a whole
	// one, being shorter than want.
	w.tail = append(w.tail[:0], buf[len(buf)-keep:]...)
	return len(p), nil
}

// TestFtraceSyscallsThroughput measures the syscalls hook end to end (the
// text of trace_pipe, parsing, pairing, output formatting) against a
// target calling getppid(2) at fixed rates, and checks that every call
// the target made is either shown or counted as lost. The numbers are
// logged: this 2-vCPU VM is shared, so they are not asserted.
func TestFtraceSyscallsThroughput(t *testing.T) {
	rates := []float64{100e3, 150e3, 250e3, 0}
	if s := os.Getenv("KTRACE_RATES"); s != "" {
		rates = nil
		for _, f := range bytes.Fields([]byte(s)) {
			r, _ := strconv.ParseFloat(string(f), 64)
			rates = append(rates, r)
		}
	}
	const secs = 3
	for _, output := range []string{hooks.OutputText, hooks.OutputJSON} {
		for _, rate := range rates {
			t.Run(fmt.Sprintf("%s/%.0fk", output, rate/1e3), func(t *testing.T) {
				c := testenv.NewContainer(t)
				target := testenv.Start(t, "ktloop", testenv.Work{Kind: "getppid-rate", Rate: rate, Seconds: secs}, unix.CLONE_NEWNS)
				c.Add(t, target.PID())
				req := wire.Request{
					Version: wire.ProtocolVersion, SessionID: fmt.Sprintf("tput-%d", time.Now().UnixNano()),
					Hook: "syscalls", Args: map[string]string{"syscalls": "getppid"}, Output: output,
					Targets: []wire.Target{{Node: "n1", Namespace: "test", Pod: "kt", PodUID: "u1", Container: "c", ContainerID: "containerd://" + c.ID}},
				}
				cw := &countingWriter{want: []byte("name=getppid")}
				if output == hooks.OutputJSON {
					cw.want = []byte(`"name":"getppid"`)
				}
				var ru0, ru1 unix.Rusage
				unix.Getrusage(unix.RUSAGE_SELF, &ru0)
				// The stop comes after the worker's last call, however far
				// behind its schedule a loaded machine puts it: a call made
				// after the stop is rightly neither shown nor lost.
				var said string
				sess := runSessionTo(t, req, Config{RefreshInterval: -1}, cw, func() {
					target.Go(t)
					said = target.Line(t)
				})
				unix.Getrusage(unix.RUSAGE_SELF, &ru1)
				if sess.err != nil {
					t.Fatalf("Run: %v\n%s", sess.err, sess.stderr.String())
				}
				user := time.Duration(ru1.Utime.Nano() - ru0.Utime.Nano())
				sys := time.Duration(ru1.Stime.Nano() - ru0.Stime.Nano())
				t.Logf("tracer CPU: user %v, system %v (reading trace_pipe formats the text in the kernel)", user, sys)
				st := parseStatuses(t, sess.stderr.String())
				stats := st[len(st)-1]
				calls, err := strconv.Atoi(strings.TrimPrefix(said, "done "))
				if err != nil {
					t.Fatalf("the worker's count %q: %v", said, err)
				}
				shown := cw.n
				t.Logf("offered %d calls (%.0f/s, %.0f kernel events/s); shown %d (%.0f/s), %.1f MB of %s; lost %d kernel events; events %d",
					calls, float64(calls)/secs, 2*float64(calls)/secs, shown, float64(shown)/secs, float64(cw.bytes)/1e6, output, stats.Lost, stats.Events)
				if shown < calls && stats.Lost == 0 {
					t.Errorf("%d of %d calls missing, and no loss reported", calls-shown, calls)
				}
				if shown > calls+1 {
					t.Errorf("%d calls shown, more than the %d made", shown, calls)
				}
			})
		}
	}
}

// runSessionTo is runSession with trace data going to stdout.
func runSessionTo(t *testing.T, req wire.Request, cfg Config, stdout io.Writer, during func()) *session {
	t.Helper()
	s := &session{}
	playPlugin(t, s, req, cfg, stdout, 60*time.Second, during)
	return s
}
