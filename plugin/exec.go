package plugin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	utilexec "k8s.io/client-go/util/exec"
	"k8s.io/kubectl/pkg/util/templates"
)

var execExample = templates.Examples(`
	# Show the addresses of pod web's network namespace with the image's ip
	kubectl trace exec pod/web -- ip -o addr

	# The listening sockets of every pod of a deployment, prefixed by pod
	kubectl trace exec deploy/web -- ss -tln

	# Capture 20 packets in the pod's network namespace with the image's tcpdump
	kubectl trace exec pod/web -- tcpdump -c 20 -nn -i any

	# Enter the network and UTS namespaces, with stdin
	kubectl trace exec -i pod/web --ns net,uts -- sh -c 'hostname; cat'`)

// ExitCodeError carries a tool's exit code back to main, which exits with
// it and prints nothing: the tool printed its own messages.
type ExitCodeError struct{ Code int }

func (e ExitCodeError) Error() string { return fmt.Sprintf("command exited with code %d", e.Code) }

// ExecOptions runs a tool of the tracer image in targets' namespaces.
type ExecOptions struct {
	genericiooptions.IOStreams
	Container       string
	Selector        string
	Namespaces      string
	Stdin           bool
	Privileged      bool
	Image           string
	HelperNamespace string
	StartTimeout    time.Duration
	Color           *string

	sources []podSource
	command []string
	client  kubernetes.Interface
	streams interface {
		Attacher
		Execer
	}
	newSessionID func() string
}

// NewCmdExec builds `kubectl trace exec`.
func NewCmdExec(getter genericclioptions.RESTClientGetter, streams genericiooptions.IOStreams, color *string) *cobra.Command {
	o := &ExecOptions{IOStreams: streams, Namespaces: "net", Image: DefaultImage(), StartTimeout: 2 * time.Minute,
		Color: color, newSessionID: func() string { return rand.String(5) }}
	cmd := &cobra.Command{
		Use:               "exec TARGET [-c CONTAINER] [--ns net,pid,…] -- COMMAND [ARGS…]",
		Short:             "Run a tool of the tracer image (tcpdump, ip, ss, tc, …) in a container's namespaces",
		Long:              "Run a command from the tracer image inside the target container's namespaces (the network namespace unless --ns says otherwise), from a helper pod on the target's node. Standard streams are relayed and the command's exit code is returned; with several targets the command runs in each and its output lines are prefixed with pod/container.",
		Example:           execExample,
		ValidArgsFunction: completePods(getter),
		RunE: func(cmd *cobra.Command, args []string) error {
			dash := cmd.ArgsLenAtDash()
			if dash < 0 {
				return errors.New("give the command after --, such as: kubectl trace exec pod/web -- ip -o addr")
			}
			if err := o.Complete(getter, args[:dash], args[dash:]); err != nil {
				return err
			}
			cmd.SilenceUsage = true
			return o.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Container, "container", "c", o.Container, "container whose namespaces to enter; defaults to the pod's default container")
	f.StringVarP(&o.Selector, "selector", "l", o.Selector, "run in every pod matching this label selector")
	f.StringVar(&o.Namespaces, "ns", o.Namespaces, "namespaces to enter, comma separated: "+strings.Join(wire.ExecNamespaces, ", ")+" (mnt runs the target's own binaries, not the image's)")
	f.BoolVarP(&o.Stdin, "stdin", "i", o.Stdin, "pass stdin to the command (one target only)")
	f.StringVar(&o.Image, "image", o.Image, "tracer image the helper runs")
	f.StringVar(&o.HelperNamespace, "helper-namespace", o.HelperNamespace, "namespace of the helper pods; defaults to the target's namespace")
	f.DurationVar(&o.StartTimeout, "start-timeout", o.StartTimeout, "how long to wait for the helper to start")
	f.BoolVar(&o.Privileged, "privileged", o.Privileged, "run the helper as a privileged container instead of with SYS_ADMIN, SYS_PTRACE, NET_ADMIN and NET_RAW")
	_ = cmd.RegisterFlagCompletionFunc("container", completeContainers(getter))
	_ = cmd.RegisterFlagCompletionFunc("ns", cobra.FixedCompletions(wire.ExecNamespaces, cobra.ShellCompDirectiveNoFileComp|cobra.ShellCompDirectiveNoSpace))
	return cmd
}

// Complete resolves the targets and validates the flags.
func (o *ExecOptions) Complete(getter genericclioptions.RESTClientGetter, targets, command []string) error {
	if len(command) == 0 {
		return errors.New("give the command after --, such as: kubectl trace exec pod/web -- ip -o addr")
	}
	o.command = command
	for _, n := range strings.Split(o.Namespaces, ",") {
		if !slices.Contains(wire.ExecNamespaces, n) {
			return fmt.Errorf("--ns %q: %q is not a namespace: choose from %s", o.Namespaces, n, strings.Join(wire.ExecNamespaces, ", "))
		}
	}
	trace := &TraceOptions{Selector: o.Selector}
	if err := trace.Complete(getter, targets); err != nil {
		return err
	}
	o.sources, o.client = trace.sources, trace.client
	if o.streams == nil {
		o.streams = trace.attacher.(remoteAttacher)
	}
	return nil
}

// Run starts one helper per node, runs the command in every target and
// returns the exit code (ExitCodeError) of a single target, or an error
// naming the targets whose command failed.
func (o *ExecOptions) Run(ctx context.Context) error {
	// Quiet like kubectl exec: the tool's own output is what matters;
	// warnings and errors still show.
	u := newUI(o.ErrOut, *o.Color, true)
	targets, err := initialTargets(ctx, o.client, o.sources, o.Container, u.step)
	if err != nil {
		return err
	}
	if o.Stdin && len(targets) > 1 {
		return fmt.Errorf("-i needs one target, and %d match: name one pod", len(targets))
	}
	nodes, groups := byNode(targets)
	session := o.newSessionID()
	type result struct {
		t    wire.Target
		code int
		err  error
	}
	var mu sync.Mutex
	var results []result
	var wg sync.WaitGroup
	prefix := len(targets) > 1
	var outMu sync.Mutex
	// Every check passes before any helper is created: a refusal for a
	// later node must not leave an earlier node's helper behind.
	pods := make([]*corev1.Pod, len(nodes))
	checked := map[string]bool{}
	for i, node := range nodes {
		ts := groups[node]
		name := HelperNamePrefix + session
		if i > 0 {
			name = fmt.Sprintf("%s-%d", name, i)
		}
		ns := o.HelperNamespace
		if ns == "" {
			ns = ts[0].Namespace
		}
		pods[i] = HelperPod(HelperParams{Name: name, Namespace: ns, Node: node, Image: o.Image,
			Request: wire.Request{SessionID: session, Hook: "exec", Targets: ts},
			Args:    []string{"hold"}, Deadline: time.Hour, Needs: execNeeds, Privileged: o.Privileged})
		if checked[ns] {
			continue
		}
		checked[ns] = true
		if err := checkAccess(ctx, o.client, ns, append(nodeModeAccess, access{verb: "create", resource: "pods", subresource: "exec"})); err != nil {
			return err
		}
		if err := checkPodSecurity(ctx, o.client, pods[i]); err != nil {
			return err
		}
	}
	for i, node := range nodes {
		ts, pod := groups[node], pods[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes, err := o.onNode(ctx, u, pod, ts, prefix, &outMu)
			mu.Lock()
			defer mu.Unlock()
			for j, t := range ts {
				r := result{t: t, err: err}
				if err == nil {
					r.code = codes[j]
				}
				results = append(results, r)
			}
		}()
	}
	wg.Wait()
	if len(results) == 1 {
		r := results[0]
		if r.err != nil {
			return r.err
		}
		if r.code != 0 {
			return ExitCodeError{Code: r.code}
		}
		return nil
	}
	var errs []error
	for _, r := range results {
		switch {
		case r.err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", r.t, r.err))
		case r.code != 0:
			errs = append(errs, fmt.Errorf("%s: command exited with code %d", r.t, r.code))
		}
	}
	return errors.Join(errs...)
}

// onNode runs the command in each target of one node through one helper,
// and deletes the helper on every path.
func (o *ExecOptions) onNode(ctx context.Context, u *ui, pod *corev1.Pod, ts []wire.Target, prefix bool, outMu *sync.Mutex) ([]int, error) {
	if _, err := o.client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("creating helper pod on node %q: %w", pod.Spec.NodeName, err)
	}
	defer func() {
		// The helper only holds (tracer hold): the tools it ran in the
		// targets' namespaces have ended, or end with it.
		if err := deleteHelper(o.client, pod.Namespace, pod.Name, 30*time.Second, true); err != nil {
			u.warn("%v", err)
		}
	}()
	if err := waitRunning(ctx, o.client, pod.Namespace, pod.Name, o.StartTimeout, u); err != nil {
		return nil, err
	}
	// The helper holds until its stdin closes: when this session ends, or
	// when the plugin dies and the kubelet closes it.
	holdR, holdW := io.Pipe()
	holdCtx, holdCancel := context.WithCancel(ctx)
	defer holdCancel()
	go func() {
		_ = o.streams.Attach(holdCtx, pod.Namespace, pod.Name, HelperContainerName, holdR, io.Discard, io.Discard)
	}()
	defer holdW.Close()

	codes := make([]int, len(ts))
	errs := make([]error, len(ts))
	var wg sync.WaitGroup
	for i, t := range ts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			argv := append([]string{"/usr/local/bin/tracer", "exec", "--container-id", t.ContainerID, "--ns", o.Namespaces, "--"}, o.command...)
			var stdin io.Reader
			if o.Stdin {
				stdin = o.In
			}
			stdout, stderr := o.Out, o.ErrOut
			var lw, le *lineWriter
			if prefix {
				p := t.Pod + "/" + t.Container + " "
				lw, le = &lineWriter{w: o.Out, prefix: p, mu: outMu}, &lineWriter{w: o.ErrOut, prefix: p, mu: outMu}
				stdout, stderr = lw, le
			}
			err := o.streams.Exec(ctx, pod.Namespace, pod.Name, HelperContainerName, argv, stdin, stdout, stderr)
			if lw != nil {
				lw.flush()
				le.flush()
			}
			var exitErr utilexec.CodeExitError
			switch {
			case errors.As(err, &exitErr):
				codes[i] = exitErr.Code
			case err != nil:
				errs[i] = fmt.Errorf("running the command in %s: %w", t, err)
			}
		}()
	}
	wg.Wait()
	return codes, errors.Join(errs...)
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
