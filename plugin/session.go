package plugin

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// targetEnd is how one target's stream ended.
type targetEnd struct {
	why    string
	failed bool
}

// helperSession is one helper and the targets it traces: in node mode a
// helper pod on one node, tracing every target of that node.
type helperSession struct {
	o      *TraceOptions
	u      *ui
	outs   *outputs
	node   string
	pod    *corev1.Pod
	framed bool
	// container is the container to attach to: the helper pod's tracer, or
	// an ephemeral container in the target pod.
	attachNS, attachPod, attachContainer string
	// ephemeral is set in ephemeral mode: the tracer is this container in
	// the target pod, instead of the helper pod.
	ephemeral *corev1.EphemeralContainer

	mu        sync.Mutex
	targets   []wire.Target
	ended     map[int]targetEnd
	stdin     *io.PipeWriter
	queue     chan []byte
	streaming bool
	closed    bool
	stats     *wire.Status
	err       error
	started   chan struct{}
}

func newHelperSession(o *TraceOptions, u *ui, outs *outputs, node string, pod *corev1.Pod, targets []wire.Target, framed bool) *helperSession {
	return &helperSession{
		o: o, u: u, outs: outs, node: node, pod: pod, framed: framed,
		attachNS: pod.Namespace, attachPod: pod.Name, attachContainer: HelperContainerName,
		targets: append([]wire.Target(nil), targets...), ended: map[int]targetEnd{},
		started: make(chan struct{}),
	}
}

// newEphemeralSession traces one target through an ephemeral container in
// its pod.
func newEphemeralSession(o *TraceOptions, u *ui, outs *outputs, t wire.Target, ec corev1.EphemeralContainer, framed bool) *helperSession {
	s := newHelperSession(o, u, outs, t.Node, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: t.Namespace, Name: t.Pod}}, []wire.Target{t}, framed)
	s.attachContainer = ec.Name
	s.ephemeral = &ec
	return s
}

// run creates the helper, streams until stop is closed (or the helper ends,
// or hard is cancelled), and deletes the helper on every path. An
// ephemeral container cannot be deleted: it ends with the stream.
func (s *helperSession) run(hard context.Context, stop <-chan struct{}) error {
	err := s.stream(hard, stop)
	var delErr error
	if s.ephemeral == nil {
		s.mu.Lock()
		released := s.stats != nil
		s.mu.Unlock()
		delErr = deleteHelper(s.o.client, s.pod.Namespace, s.pod.Name, 30*time.Second, released)
	}
	s.mu.Lock()
	s.err = errors.Join(err, delErr)
	s.mu.Unlock()
	return s.err
}

func (s *helperSession) stream(hard context.Context, stop <-chan struct{}) error {
	ctx, cancel := context.WithCancel(hard)
	defer cancel()
	// The wait for the container to run goes on beside the first attach
	// attempts (attachWhenStarted), and ends when one connects.
	waitCtx, waitCancel := context.WithCancel(ctx)
	defer waitCancel()
	starting := make(chan error, 1)
	if s.ephemeral != nil {
		t := s.targets[0]
		s.u.step("adding ephemeral container %s to pod %s/%s", s.ephemeral.Name, t.Namespace, t.Pod)
		if err := addEphemeral(ctx, s.o.client, t.Namespace, t.Pod, *s.ephemeral); err != nil {
			return err
		}
		go func() {
			starting <- waitEphemeral(waitCtx, s.o.client, t.Namespace, t.Pod, s.ephemeral.Name, s.o.StartTimeout, s.u)
		}()
	} else {
		s.u.step("creating helper pod %s/%s on node %q for %d target(s)", s.pod.Namespace, s.pod.Name, s.node, len(s.targets))
		if _, err := s.o.client.CoreV1().Pods(s.pod.Namespace).Create(ctx, s.pod, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating helper pod on node %q: %w", s.node, err)
		}
		go func() {
			starting <- waitRunning(waitCtx, s.o.client, s.pod.Namespace, s.pod.Name, s.o.StartTimeout, s.u)
		}()
	}
	return s.attachAndStream(ctx, stop, cancel, starting, waitCancel)
}

// attachAndStream attaches to the tracer and relays until the end. starting
// answers once whether the tracer's container runs (nil) or never will;
// connected is called when an attach connects.
func (s *helperSession) attachAndStream(ctx context.Context, stop <-chan struct{}, cancel context.CancelFunc, starting <-chan error, connected func()) error {
	status := newStatusWriter(s.u, s.o.Hook)
	status.onTarget = s.targetStatus
	stdinR, stdinW := io.Pipe()
	s.mu.Lock()
	s.stdin = stdinW
	s.mu.Unlock()

	// stdout: frames demultiplexed to the outputs, or the bytes as they are.
	var stdout io.Writer
	demuxDone := make(chan error, 1)
	inflateDone := make(chan error, 1)
	if s.framed {
		pr, pw := io.Pipe()
		stdout = pw
		go func() {
			err := s.demux(pr)
			_ = pr.CloseWithError(err)
			if err != nil {
				// A broken stream cannot be resynchronised: end the session
				// rather than hang on it.
				cancel()
			}
			demuxDone <- err
		}()
		defer pw.Close()
	} else {
		t := s.target(0)
		stdout = writerFunc(func(p []byte) (int, error) {
			return len(p), s.outs.write(t, p)
		})
		demuxDone <- nil
	}
	if s.compressed() {
		stdout = inflating(stdout, cancel, inflateDone)
	} else {
		inflateDone <- nil
	}

	attachDone := make(chan error, 1)
	var isConnected atomic.Bool
	var connectOnce sync.Once
	heard := func() {
		connectOnce.Do(func() {
			isConnected.Store(true)
			connected()
			close(s.started)
		})
	}
	go func() {
		err := s.attachWhenStarted(ctx, starting, stdinR, onWrite(stdout, heard), onWrite(status, heard))
		if pw, ok := stdout.(*io.PipeWriter); ok {
			_ = pw.Close()
		}
		attachDone <- err
	}()
	// The go byte: the helper holds its data until the plugin is attached.
	s.send([]byte{'\n'})
	s.mu.Lock()
	s.streaming = true
	s.mu.Unlock()

	var attachErr error
	var stopDeadline <-chan time.Time
	gaveUp := false
	stopSent := false
	stopCh := stop
loop:
	for {
		select {
		case attachErr = <-attachDone:
			break loop
		case <-stopCh:
			if !isConnected.Load() {
				// Nothing runs yet that could report: stop waiting for it.
				cancel()
				<-attachDone
				s.closeStdin()
				<-demuxDone
				return errors.New("stopped while the helper was starting")
			}
			stopCh = nil
			stopSent = true
			// Stop by message, with stdin kept open until the helper has
			// exited: a runtime may close the attach's output soon after its
			// stdin ends, which would cut the helper's final report off.
			if line, err := wire.EncodeControl(wire.Control{Stop: true}); err != nil || !s.send(line) {
				s.closeStdin()
			}
			stopDeadline = time.After(s.o.StopTimeout)
		case <-stopDeadline:
			s.u.warn("the helper on node %q did not finish within %s of the stop request: giving up on it, its data ends early (raise --stop-timeout on a busy node)", s.node, s.o.StopTimeout)
			gaveUp = true
			cancel()
		}
	}
	s.closeStdin()
	demuxErr := errors.Join(<-inflateDone, <-demuxDone)
	var notStarted startError
	if errors.As(attachErr, &notStarted) {
		return notStarted.err
	}
	status.flush()
	stats, helperErrs := status.result()
	s.mu.Lock()
	s.stats = stats
	s.mu.Unlock()

	// How did the helper end? Its exit code is the truth; the stream error
	// only matters when the helper did not finish cleanly.
	getCtx, getCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer getCancel()
	pod, getErr := s.o.client.CoreV1().Pods(s.attachNS).Get(getCtx, s.attachPod, metav1.GetOptions{})
	// A tracer that fails at once can end before the attach connects
	// ("container not found"), or before its error line reaches the
	// stream: its exit, with its message, is a moment behind in the pod's
	// status.
	for wait := time.Now().Add(5 * time.Second); (attachErr != nil || stats == nil) && getErr == nil && !s.terminated(pod) && time.Now().Before(wait); {
		time.Sleep(pollInterval)
		pod, getErr = s.o.client.CoreV1().Pods(s.attachNS).Get(getCtx, s.attachPod, metav1.GetOptions{})
	}
	where := fmt.Sprintf("tracing on node %q", s.node)
	if len(s.targets) == 1 {
		where = fmt.Sprintf("tracing %s on node %q", s.targets[0], s.node)
	}
	if len(helperErrs) > 0 {
		return fmt.Errorf("%s: %s", where, strings.Join(helperErrs, "; "))
	}
	if demuxErr != nil && !errors.Is(demuxErr, io.EOF) {
		return fmt.Errorf("%s: reading the helper's output: %w", where, demuxErr)
	}
	if gaveUp {
		return fmt.Errorf("%s: gave up waiting for the helper after the stop request: the data ends early", where)
	}
	if apierrors.IsNotFound(getErr) && s.ephemeral == nil {
		return fmt.Errorf("%s: the helper pod was deleted during the trace: the data may be incomplete", where)
	}
	if getErr == nil {
		for _, cs := range containerStatuses(pod) {
			if cs.Name == s.attachContainer && cs.State.Terminated != nil {
				if err := terminatedError(pod, cs.State.Terminated); err != nil {
					return fmt.Errorf("%s: %w", where, err)
				}
				if stats == nil && stopSent && attachErr == nil {
					// The attach stream can end before the helper's last
					// stderr line is through (a loaded node); the line is in
					// the container's log as well. Only after our own stop:
					// a stream that broke first lost data on the way.
					if st := s.statsFromLog(getCtx); st != nil {
						stats = st
						s.mu.Lock()
						s.stats = st
						s.mu.Unlock()
						return nil
					}
				}
				if stats == nil {
					if attachErr != nil {
						return fmt.Errorf("%s: the helper ended without final statistics (the attach stream broke: %v): data may be incomplete", where, attachErr)
					}
					return fmt.Errorf("%s: the helper ended without final statistics: data may be incomplete", where)
				}
				return nil
			}
		}
	}
	if attachErr != nil {
		return fmt.Errorf("%s: the attach stream ended: %w", where, attachErr)
	}
	if stats == nil {
		return fmt.Errorf("%s: the stream ended before the helper reported final statistics", where)
	}
	return nil
}

// attachRetry paces attach attempts while the tracer's container starts.
const attachRetry = 100 * time.Millisecond

// startError is a start-up failure seen while attach attempts went on.
type startError struct{ err error }

func (e startError) Error() string { return e.err.Error() }
func (e startError) Unwrap() error { return e.err }

// attachWhenStarted attaches to the tracer, and while starting has not
// said that its container runs (then once more), repeats an attempt that
// failed before the tracer said anything. The kubelet attaches to whatever
// the container runtime runs, while the pod's status says so only after
// its next relist, up to a second later: attaching first takes that second
// off the time to the first event. A failed attempt may have read stdin
// (the API server takes the stream before it reaches the kubelet); what it
// read never reached the tracer, which answers the go byte at once, and
// goes to the next attempt.
func (s *helperSession) attachWhenStarted(ctx context.Context, starting <-chan error, stdin io.Reader, stdout, stderr *firstWrite) error {
	relay := newStdinRelay(stdin)
	for {
		in := relay.attempt()
		err := s.o.attacher.Attach(ctx, s.attachNS, s.attachPod, s.attachContainer, in, stdout, stderr)
		if err == nil || stdout.heard.Load() || stderr.heard.Load() || starting == nil || ctx.Err() != nil {
			return err
		}
		// The executor's stdin copy may still wait in a read: it must not
		// take what the next attempt is to send.
		relay.giveBack(in)
		select {
		case startErr := <-starting:
			if startErr != nil {
				return startError{startErr}
			}
			starting = nil
		case <-time.After(attachRetry):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// stdinRelay hands stdin to one attach attempt at a time, and takes back
// what a failed attempt read.
type stdinRelay struct {
	mu   sync.Mutex
	cond *sync.Cond
	buf  []byte
	err  error // the source's end, once buf is drained
}

func newStdinRelay(r io.Reader) *stdinRelay {
	relay := &stdinRelay{}
	relay.cond = sync.NewCond(&relay.mu)
	go func() {
		b := make([]byte, 32<<10)
		for {
			n, err := r.Read(b)
			relay.mu.Lock()
			relay.buf = append(relay.buf, b[:n]...)
			if err != nil {
				relay.err = err
			}
			relay.cond.Broadcast()
			relay.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return relay
}

// relayReader is one attempt's stdin.
type relayReader struct {
	relay  *stdinRelay
	closed bool // guarded by relay.mu
	read   []byte
}

func (s *stdinRelay) attempt() *relayReader { return &relayReader{relay: s} }

func (a *relayReader) Read(p []byte) (int, error) {
	s := a.relay
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.buf) == 0 && s.err == nil && !a.closed {
		s.cond.Wait()
	}
	switch {
	case a.closed:
		return 0, io.EOF
	case len(s.buf) == 0:
		return 0, s.err
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	a.read = append(a.read, p[:n]...)
	return n, nil
}

// giveBack ends a failed attempt's stdin and puts what it read back in
// front of what is still to come.
func (s *stdinRelay) giveBack(a *relayReader) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a.closed = true
	s.buf = append(a.read, s.buf...)
	a.read = nil
	s.cond.Broadcast()
}

// firstWrite calls heard on the first write: the tracer has spoken.
type firstWrite struct {
	w     io.Writer
	heard atomic.Bool
	fn    func()
}

func onWrite(w io.Writer, fn func()) *firstWrite { return &firstWrite{w: w, fn: fn} }

func (f *firstWrite) Write(p []byte) (int, error) {
	if len(p) > 0 && !f.heard.Load() {
		f.heard.Store(true)
		f.fn()
	}
	return f.w.Write(p)
}

// compressed says whether the helper compresses its stdout: the request it
// was given, in its container's environment, says so.
func (s *helperSession) compressed() bool {
	var env []corev1.EnvVar
	if s.ephemeral != nil {
		env = s.ephemeral.Env
	} else if len(s.pod.Spec.Containers) > 0 {
		env = s.pod.Spec.Containers[0].Env
	}
	for _, e := range env {
		if e.Name != wire.RequestEnv {
			continue
		}
		// Not wire.DecodeRequest: the plugin validated the request when
		// it built it, and only this field matters here.
		var req struct {
			Compress bool `json:"compress"`
		}
		b, err := base64.StdEncoding.DecodeString(e.Value)
		return err == nil && json.Unmarshal(b, &req) == nil && req.Compress
	}
	return false
}

// inflating returns the writer the attach writes the helper's compressed
// stdout to; a goroutine inflates it into out, in large writes, and closes
// out (when it is a pipe) once the stream ends. A stream cut short ends
// what arrived, as an uncompressed one would; a corrupt one cannot be
// resynchronised: it ends the session, and the error goes to done.
func inflating(out io.Writer, cancel context.CancelFunc, done chan<- error) *io.PipeWriter {
	pr, pw := io.Pipe()
	go func() {
		zr := flate.NewReader(bufio.NewReaderSize(pr, 256<<10))
		_, err := io.CopyBuffer(out, zr, make([]byte, 256<<10))
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = nil
		}
		if err != nil {
			err = fmt.Errorf("inflating the helper's output: %w", err)
			cancel()
		}
		_ = pr.CloseWithError(err)
		if w, ok := out.(*io.PipeWriter); ok {
			_ = w.Close()
		}
		done <- err
	}()
	return pw
}

// statsFromLog finds the helper's final statistics in its container log.
func (s *helperSession) statsFromLog(ctx context.Context) *wire.Status {
	raw, err := s.o.client.CoreV1().Pods(s.attachNS).GetLogs(s.attachPod, &corev1.PodLogOptions{
		Container: s.attachContainer, TailLines: ptr.To(int64(50)),
	}).DoRaw(ctx)
	if err != nil {
		return nil
	}
	var found *wire.Status
	for _, line := range bytes.Split(raw, []byte{'\n'}) {
		if st, ok := wire.ParseStatus(line); ok && st.Kind == wire.StatusStats {
			found = &st
		}
	}
	return found
}

// terminated says whether the tracer container has ended.
func (s *helperSession) terminated(pod *corev1.Pod) bool {
	for _, cs := range containerStatuses(pod) {
		if cs.Name == s.attachContainer && cs.State.Terminated != nil {
			return true
		}
	}
	return false
}

// allEnded says whether every target of the session ended on its own.
func (s *helperSession) allEnded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.targets) > 0 && len(s.ended) == len(s.targets)
}

// containerStatuses lists a pod's container and ephemeral container statuses.
func containerStatuses(pod *corev1.Pod) []corev1.ContainerStatus {
	return append(append([]corev1.ContainerStatus(nil), pod.Status.ContainerStatuses...), pod.Status.EphemeralContainerStatuses...)
}

// demux reads frames and hands each target's records to the outputs.
func (s *helperSession) demux(r io.Reader) error {
	br := bufio.NewReaderSize(r, 256<<10)
	var buf []byte
	for {
		idx, payload, nb, err := wire.ReadFrame(br, buf)
		buf = nb
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		t, ok := s.targetOK(idx)
		if !ok {
			return fmt.Errorf("frame for unknown target %d", idx)
		}
		if err := s.outs.write(t, payload); err != nil {
			return err
		}
	}
}

func (s *helperSession) target(i int) wire.Target {
	t, _ := s.targetOK(i)
	return t
}

func (s *helperSession) targetOK(i int) (wire.Target, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i < 0 || i >= len(s.targets) {
		return wire.Target{}, false
	}
	return s.targets[i], true
}

// send queues b for the helper's stdin. One writer goroutine keeps the
// order (the helper numbers added targets by arrival), and a pipe write
// that blocks on a slow stream never holds the session's lock.
func (s *helperSession) send(b []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stdin == nil || s.closed {
		return false
	}
	if s.queue == nil {
		s.queue = make(chan []byte, 256)
		go func(w *io.PipeWriter, q <-chan []byte) {
			for msg := range q {
				if _, err := w.Write(msg); err != nil {
					return
				}
			}
			_ = w.Close()
		}(s.stdin, s.queue)
	}
	select {
	case s.queue <- b:
		return true
	default:
		return false
	}
}

// closeStdin ends the helper's stdin after what is queued: the end of
// stdin is the stop signal.
func (s *helperSession) closeStdin() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stdin == nil || s.closed {
		return
	}
	s.closed = true
	if s.queue != nil {
		close(s.queue)
		return
	}
	_ = s.stdin.Close()
}

// add asks the running helper to trace one more target; false when the
// helper is not streaming (the caller then starts another session).
func (s *helperSession) add(t wire.Target) bool {
	s.mu.Lock()
	if !s.streaming || s.closed {
		s.mu.Unlock()
		return false
	}
	s.targets = append(s.targets, t)
	s.mu.Unlock()
	line, err := wire.EncodeControl(wire.Control{Add: &t})
	if err != nil {
		return false
	}
	return s.send(line)
}

// remove stops tracing the target with that pod UID.
func (s *helperSession) remove(podUID, why string) (wire.Target, bool) {
	s.mu.Lock()
	idx := -1
	for i, t := range s.targets {
		if _, done := s.ended[i]; t.PodUID == podUID && !done {
			idx = i
		}
	}
	if idx < 0 {
		s.mu.Unlock()
		return wire.Target{}, false
	}
	s.ended[idx] = targetEnd{why: why}
	t := s.targets[idx]
	s.mu.Unlock()
	if line, err := wire.EncodeControl(wire.Control{Remove: &idx}); err == nil {
		s.send(line)
	}
	return t, true
}

// targetStatus records the helper's per-target reports.
func (s *helperSession) targetStatus(st wire.Status) {
	if st.Index == nil {
		return
	}
	t, ok := s.targetOK(*st.Index)
	if !ok {
		return
	}
	switch st.Kind {
	case wire.StatusTargetAdded:
		s.u.ok("tracing %s on node %q", t, s.node)
	case wire.StatusTargetEnded:
		s.mu.Lock()
		_, already := s.ended[*st.Index]
		if !already {
			s.ended[*st.Index] = targetEnd{why: st.Message, failed: st.Failed}
		}
		s.mu.Unlock()
		if st.Failed {
			s.u.warn("%s: %s", t, st.Message)
		} else if !already {
			s.u.step("%s: %s", t, st.Message)
		}
	}
}

// results returns a summary row per target; ended is how the whole trace
// stopped, for targets that did not end on their own.
func (s *helperSession) results(ended string) []sessionResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sessionResult
	for i, t := range s.targets {
		r := sessionResult{Target: t.String(), Hook: s.o.Hook, Ended: ended}
		if e, ok := s.ended[i]; ok {
			r.Ended, r.Failed = e.why, e.failed
		}
		if s.err != nil {
			r.Ended, r.Failed = "failed", true
		}
		if n, ok := s.outs.count(t); ok {
			r.Events = n
		}
		if s.stats != nil {
			r.Duration = time.Duration(s.stats.Seconds * float64(time.Second))
			if len(s.targets) == 1 {
				r.Events, r.Lost = s.stats.Events, s.stats.Lost
				if s.stats.Ended != "" && ended == "helper ended" {
					r.Ended = s.stats.Ended
				}
			}
		}
		out = append(out, r)
	}
	return out
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
