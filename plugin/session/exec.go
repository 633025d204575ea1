package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	utilexec "k8s.io/client-go/util/exec"
)

// ExecConfig is what Exec needs: a command of the tracer image to run in
// each target's namespaces, from one holding helper pod per node.
type ExecConfig struct {
	ID      string
	Client  kubernetes.Interface
	Streams interface {
		Attacher
		Execer
	}
	Sources   []Source
	Container string
	// Namespaces are the target's namespaces to enter, comma separated
	// (wire.ExecNamespaces).
	Namespaces string
	Command    []string
	// Stdin is passed to the command when not nil (one target only).
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Image          string
	// HelperNamespace is where the helper pods run; "" is each node's
	// first target's namespace.
	HelperNamespace string
	Privileged      bool
	StartTimeout    time.Duration
	Reporter        Reporter
}

// ExecResult is how the command went in one target: its exit code, or
// why it did not run to its end.
type ExecResult struct {
	Target wire.Target
	Code   int
	Err    error
}

// Exec runs the command in every target and returns a result per target.
// Every check passes before any helper is created, and every helper is
// deleted on every path. With several targets, each line the command
// prints is prefixed with its pod/container.
func Exec(ctx context.Context, cfg ExecConfig) ([]ExecResult, error) {
	r := report{cfg.Reporter}
	targets, err := initialTargets(ctx, cfg.Client, cfg.Sources, cfg.Container, r.step)
	if err != nil {
		return nil, err
	}
	if cfg.Stdin != nil && len(targets) > 1 {
		return nil, fmt.Errorf("-i needs one target, and %d match: name one pod", len(targets))
	}
	nodes, groups := byNode(targets)
	pods, err := execHelpers(ctx, cfg, nodes, groups)
	if err != nil {
		return nil, err
	}
	x := &execution{cfg: &cfg, report: r, prefix: len(targets) > 1}
	var mu sync.Mutex
	var results []ExecResult
	var wg sync.WaitGroup
	for i, node := range nodes {
		ts, pod := groups[node], pods[i]
		wg.Go(func() {
			codes, err := x.onNode(ctx, pod, ts)
			mu.Lock()
			defer mu.Unlock()
			for j, t := range ts {
				res := ExecResult{Target: t, Err: err}
				if err == nil {
					res.Code = codes[j]
				}
				results = append(results, res)
			}
		})
	}
	wg.Wait()
	return results, nil
}

// execAccess is what Exec does in a helper's namespace: node mode's, and
// exec into the helper.
var execAccess = append(append([]access(nil), nodeModeAccess...), access{verb: "create", resource: "pods", subresource: "exec"})

// execHelpers builds the helper pod of each node and checks each
// namespace: a refusal for a later node must not leave an earlier node's
// helper behind.
func execHelpers(ctx context.Context, cfg ExecConfig, nodes []string, groups map[string][]wire.Target) ([]*corev1.Pod, error) {
	pods := make([]*corev1.Pod, len(nodes))
	checked := map[string]bool{}
	for i, node := range nodes {
		ts := groups[node]
		name := HelperNamePrefix + cfg.ID
		if i > 0 {
			name = fmt.Sprintf("%s-%d", name, i)
		}
		ns := cfg.HelperNamespace
		if ns == "" {
			ns = ts[0].Namespace
		}
		// The helper runs no hook: it holds, and the commands run beside it.
		pods[i] = HelperPod(HelperParams{Name: name, Namespace: ns, Node: node, Image: cfg.Image,
			Request: wire.Request{SessionID: cfg.ID, Targets: ts},
			Args:    []string{"hold"}, Deadline: time.Hour, Needs: execNeeds, Privileged: cfg.Privileged})
		if checked[ns] {
			continue
		}
		checked[ns] = true
		if err := checkAccess(ctx, cfg.Client, ns, execAccess); err != nil {
			return nil, err
		}
		if err := checkPodSecurity(ctx, cfg.Client, pods[i]); err != nil {
			return nil, err
		}
	}
	return pods, nil
}

// execution is one Exec's shared state.
type execution struct {
	cfg    *ExecConfig
	report report
	prefix bool
	// outMu keeps the prefixed lines of concurrent targets apart.
	outMu sync.Mutex
}

// onNode runs the command in each target of one node through one helper,
// and deletes the helper on every path.
func (x *execution) onNode(ctx context.Context, pod *corev1.Pod, ts []wire.Target) ([]int, error) {
	client := x.cfg.Client
	if _, err := client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("creating helper pod on node %q: %w", pod.Spec.NodeName, err)
	}
	defer func() {
		// The helper only holds (tracer hold): the tools it ran in the
		// targets' namespaces have ended, or end with it.
		if err := DeleteHelperPod(client, pod.Namespace, pod.Name, 30*time.Second, true); err != nil {
			x.report.warn("%v", err)
		}
	}()
	if err := waitRunning(ctx, client, pod.Namespace, pod.Name, x.cfg.StartTimeout, x.report); err != nil {
		return nil, err
	}
	// The helper holds until its stdin closes: when this session ends, or
	// when the plugin dies and the kubelet closes it.
	holdR, holdW := io.Pipe()
	holdCtx, holdCancel := context.WithCancel(ctx)
	defer holdCancel()
	go func() {
		_ = x.cfg.Streams.Attach(holdCtx, pod.Namespace, pod.Name, HelperContainerName, holdR, io.Discard, io.Discard)
	}()
	defer holdW.Close()

	codes := make([]int, len(ts))
	errs := make([]error, len(ts))
	var wg sync.WaitGroup
	for i, t := range ts {
		wg.Go(func() { codes[i], errs[i] = x.inTarget(ctx, pod, t) })
	}
	wg.Wait()
	return codes, errors.Join(errs...)
}

// inTarget runs the command in one target's namespaces.
func (x *execution) inTarget(ctx context.Context, pod *corev1.Pod, t wire.Target) (int, error) {
	argv := append([]string{"/usr/local/bin/tracer", "exec", "--container-id", t.ContainerID, "--ns", x.cfg.Namespaces, "--"}, x.cfg.Command...)
	stdout, stderr := x.cfg.Stdout, x.cfg.Stderr
	var lw, le *lineWriter
	if x.prefix {
		p := t.Pod + "/" + t.Container + " "
		lw, le = &lineWriter{w: stdout, prefix: p, mu: &x.outMu}, &lineWriter{w: stderr, prefix: p, mu: &x.outMu}
		stdout, stderr = lw, le
	}
	err := x.cfg.Streams.Exec(ctx, pod.Namespace, pod.Name, HelperContainerName, argv, x.cfg.Stdin, stdout, stderr)
	if lw != nil {
		lw.flush()
		le.flush()
	}
	var exitErr utilexec.CodeExitError
	switch {
	case errors.As(err, &exitErr):
		return exitErr.Code, nil
	case err != nil:
		return 0, fmt.Errorf("running the command in %s: %w", t, err)
	}
	return 0, nil
}

// lineWriter prefixes every line with its target, writing whole lines only
// so that concurrent targets never interleave within a line.
type lineWriter struct {
	w      io.Writer
	prefix string
	mu     *sync.Mutex
	buf    []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		l.mu.Lock()
		_, err := fmt.Fprintf(l.w, "%s%s", l.prefix, l.buf[:i+1])
		l.mu.Unlock()
		l.buf = l.buf[i+1:]
		if err != nil {
			return len(p), err
		}
	}
}

func (l *lineWriter) flush() {
	if len(l.buf) > 0 {
		_, _ = l.Write([]byte{'\n'})
	}
}
