package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// stream is one helper and the targets it traces, from its creation to its
// deletion: its stdin carries the go byte and control messages (control.go),
// its stdout the trace data to the outputs (decode.go), its stderr the
// status lines to the report (status.go); how it ended is diagnose.go's.
type stream struct {
	s    *Session
	plan Plan

	mu        sync.Mutex
	targets   []wire.Target
	writers   []*targetOut // by target index, as the helper numbers them
	ended     map[int]targetEnd
	stdin     *io.PipeWriter
	queue     chan []byte
	streaming bool
	closed    bool
	stats     *wire.Status
	err       error
	// started is closed when the tracer first says something.
	started chan struct{}
}

// targetEnd is how one target's stream ended.
type targetEnd struct {
	why    string
	failed bool
}

func newStream(s *Session, p Plan) *stream {
	h := &stream{s: s, plan: p, ended: map[int]targetEnd{}, started: make(chan struct{})}
	for _, t := range p.Targets {
		h.targets = append(h.targets, t)
		h.writers = append(h.writers, s.tee.target(t))
	}
	return h
}

// run creates the helper, streams until stop is closed (or the helper ends,
// or hard is cancelled), and removes the helper on every path.
func (h *stream) run(hard context.Context, stop <-chan struct{}) error {
	err := h.stream(hard, stop)
	h.mu.Lock()
	released := h.stats != nil
	h.mu.Unlock()
	delErr := h.plan.Helper.remove(h.s.cfg.Client, released)
	h.mu.Lock()
	h.err = errors.Join(err, delErr)
	h.mu.Unlock()
	_, name, _ := h.plan.Helper.attachRef()
	h.s.report.helper(HelperChange{Node: h.plan.Node, Name: name, State: HelperEnded, Err: h.err})
	return h.err
}

// stream starts the helper, attaches, relays until the end, and says how
// the helper ended.
func (h *stream) stream(hard context.Context, stop <-chan struct{}) error {
	ctx, cancel := context.WithCancel(hard)
	defer cancel()
	cfg := &h.s.cfg
	if err := h.plan.Helper.create(ctx, cfg.Client, h.s.report, len(h.plan.Targets)); err != nil {
		return err
	}
	// The wait for the container to run goes on beside the first attach
	// attempts (attachWhenStarted), and ends when one connects.
	waitCtx, waitCancel := context.WithCancel(ctx)
	defer waitCancel()
	starting := make(chan error, 1)
	go func() { starting <- h.plan.Helper.waitStarted(waitCtx, cfg.Client, cfg.StartTimeout, h.s.report) }()

	status := newStatusWriter(h.s.report, h.attached, h.targetStatus)
	dec := h.decode(cancel)
	defer dec.close()
	a := h.attach(ctx, starting, dec.in, status, waitCancel)
	end, err := h.relay(stop, cancel, a, dec)
	if err != nil {
		return err
	}
	h.closeStdin()
	end.readErr = dec.wait()
	var notStarted startError
	if errors.As(end.attachErr, &notStarted) {
		return notStarted.err
	}
	status.flush()
	end.stats, end.helperErrs = status.result()
	h.inspect(&end)
	stats, err := diagnose(end)
	h.mu.Lock()
	h.stats = stats
	h.mu.Unlock()
	return err
}

// attachment is the attach running in the background.
type attachment struct {
	done      chan error
	connected atomic.Bool
}

// attach starts attaching to the tracer and sends the go byte: the helper
// holds its data until the plugin is attached. connected is called when
// the tracer first says something.
func (h *stream) attach(ctx context.Context, starting <-chan error, stdout, stderr io.Writer, connected func()) *attachment {
	stdinR, stdinW := io.Pipe()
	h.mu.Lock()
	h.stdin = stdinW
	h.mu.Unlock()
	a := &attachment{done: make(chan error, 1)}
	var once sync.Once
	heard := func() {
		once.Do(func() {
			a.connected.Store(true)
			connected()
			close(h.started)
		})
	}
	go func() {
		err := h.attachWhenStarted(ctx, starting, stdinR, onWrite(stdout, heard), onWrite(stderr, heard))
		if pw, ok := stdout.(*io.PipeWriter); ok {
			_ = pw.Close()
		}
		a.done <- err
	}()
	h.send([]byte{'\n'})
	h.mu.Lock()
	h.streaming = true
	h.mu.Unlock()
	return a
}

// relay waits for the attach to end. At the first stop it asks the helper
// to stop and gives it StopTimeout to flush and report; a stop before the
// tracer said anything ends the wait at once, with an error.
func (h *stream) relay(stop <-chan struct{}, cancel context.CancelFunc, a *attachment, dec *decoding) (ending, error) {
	var end ending
	var deadline <-chan time.Time
	for {
		select {
		case end.attachErr = <-a.done:
			return end, nil
		case <-stop:
			if !a.connected.Load() {
				// Nothing runs yet that could report: stop waiting for it.
				cancel()
				<-a.done
				h.closeStdin()
				dec.waitDemux()
				return end, errors.New("stopped while the helper was starting")
			}
			stop = nil
			end.stopSent = true
			// Stop by message, with stdin kept open until the helper has
			// exited: a runtime may close the attach's output soon after its
			// stdin ends, which would cut the helper's final report off.
			if line, err := wire.EncodeControl(wire.Control{Stop: true}); err != nil || !h.send(line) {
				h.closeStdin()
			}
			deadline = time.After(h.s.cfg.StopTimeout)
		case <-deadline:
			h.s.report.warn("the helper on node %q did not finish within %s of the stop request: giving up on it, its data ends early (raise --stop-timeout on a busy node)", h.plan.Node, h.s.cfg.StopTimeout)
			end.gaveUp = true
			cancel()
		}
	}
}

// attached reports that the helper traces.
func (h *stream) attached() {
	_, name, _ := h.plan.Helper.attachRef()
	h.s.report.helper(HelperChange{Node: h.plan.Node, Name: name, State: HelperAttached})
}

// inspect reads what diagnose needs from the API server: the tracer's
// container status, and its final statistics from its log when the stream
// lost them.
func (h *stream) inspect(end *ending) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ns, name, container := h.plan.Helper.attachRef()
	pods := h.s.cfg.Client.CoreV1().Pods(ns)
	pod, err := pods.Get(ctx, name, metav1.GetOptions{})
	// A tracer that fails at once can end before the attach connects
	// ("container not found"), or before its error line reaches the
	// stream: its exit, with its message, is a moment behind in the pod's
	// status.
	for wait := time.Now().Add(5 * time.Second); (end.attachErr != nil || end.stats == nil) && err == nil && terminated(pod, container) == nil && time.Now().Before(wait); {
		time.Sleep(pollInterval)
		pod, err = pods.Get(ctx, name, metav1.GetOptions{})
	}
	end.where = h.where()
	end.container = container
	end.podGone = apierrors.IsNotFound(err) && h.plan.Helper.ownsPod()
	if err == nil {
		end.pod = pod
	}
	if end.wantsLog() {
		end.logStats = statsFromLog(ctx, h.s.cfg.Client, ns, name, container)
	}
}

// where names the helper in its errors.
func (h *stream) where() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.targets) == 1 {
		return fmt.Sprintf("tracing %s on node %q", h.targets[0], h.plan.Node)
	}
	return fmt.Sprintf("tracing on node %q", h.plan.Node)
}

// statsFromLog finds the helper's final statistics in its container log.
func statsFromLog(ctx context.Context, client kubernetes.Interface, ns, pod, container string) *wire.Status {
	raw, err := client.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{
		Container: container, TailLines: ptr.To(int64(50)),
	}).DoRaw(ctx)
	if err != nil {
		return nil
	}
	return lastStats(raw)
}
