package session

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
)

// Attacher streams a running container's stdin, stdout and stderr. It is an
// interface so that tests can record what the session does with it.
type Attacher interface {
	Attach(ctx context.Context, namespace, pod, container string, stdin io.Reader, stdout, stderr io.Writer) error
}

// Execer runs a command in a container, like `kubectl exec`.
type Execer interface {
	Exec(ctx context.Context, namespace, pod, container string, command []string, stdin io.Reader, stdout, stderr io.Writer) error
}

// RemoteAttacher attaches and execs through the API server, like `kubectl
// attach -i` and `kubectl exec`: WebSocket first, SPDY when the server or a
// proxy cannot upgrade.
type RemoteAttacher struct {
	config *rest.Config
	client kubernetes.Interface
}

// NewRemoteAttacher streams through the API server that config reaches,
// with client: a kubeconfig's or the in-cluster config.
func NewRemoteAttacher(config *rest.Config, client kubernetes.Interface) RemoteAttacher {
	return RemoteAttacher{config: config, client: client}
}

// Attach attaches to the container's standard streams.
func (a RemoteAttacher) Attach(ctx context.Context, namespace, pod, container string, stdin io.Reader, stdout, stderr io.Writer) error {
	req := a.client.CoreV1().RESTClient().Post().
		Resource("pods").Namespace(namespace).Name(pod).SubResource("attach").
		VersionedParams(&corev1.PodAttachOptions{
			Container: container,
			Stdin:     stdin != nil,
			Stdout:    true,
			Stderr:    true,
			TTY:       false,
		}, scheme.ParameterCodec)
	return a.stream(ctx, req, namespace, pod, stdin, stdout, stderr)
}

// Exec runs command in the container and streams its standard streams; a
// non-zero exit comes back as client-go's exec.CodeExitError.
func (a RemoteAttacher) Exec(ctx context.Context, namespace, pod, container string, command []string, stdin io.Reader, stdout, stderr io.Writer) error {
	req := a.client.CoreV1().RESTClient().Post().
		Resource("pods").Namespace(namespace).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{
			Container: container,
			Command:   command,
			Stdin:     stdin != nil,
			Stdout:    true,
			Stderr:    true,
		}, scheme.ParameterCodec)
	return a.stream(ctx, req, namespace, pod, stdin, stdout, stderr)
}

func (a RemoteAttacher) stream(ctx context.Context, req *rest.Request, namespace, pod string, stdin io.Reader, stdout, stderr io.Writer) error {
	spdy, err := remotecommand.NewSPDYExecutor(a.config, "POST", req.URL())
	if err != nil {
		return fmt.Errorf("preparing a stream to %s/%s: %w", namespace, pod, err)
	}
	ws, err := remotecommand.NewWebSocketExecutor(a.config, "GET", req.URL().String())
	if err != nil {
		return fmt.Errorf("preparing a stream to %s/%s: %w", namespace, pod, err)
	}
	exec, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return fmt.Errorf("preparing a stream to %s/%s: %w", namespace, pod, err)
	}
	return exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: stdout, Stderr: stderr})
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
func (h *stream) attachWhenStarted(ctx context.Context, starting <-chan error, stdin io.Reader, stdout, stderr *firstWrite) error {
	ns, pod, container := h.plan.Helper.attachRef()
	relay := newStdinRelay(stdin)
	for {
		in := relay.attempt()
		err := h.s.cfg.Attacher.Attach(ctx, ns, pod, container, in, stdout, stderr)
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
