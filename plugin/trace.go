package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubectl/pkg/util/templates"
	"sigs.k8s.io/yaml"
)

var traceExample = templates.Examples(`
	# Trace the scheduler activity of pod web until Ctrl-C
	kubectl trace pod/web --hook sched

	# Trace container app of pod web for ten seconds, as JSON lines, into a file
	kubectl trace pod/web -c app --hook sched --duration 10s -o json > sched.jsonl

	# Show the helper pod that would be created, and create nothing
	kubectl trace pod/web --hook sched --dry-run

	# List the hooks
	kubectl trace hooks`)

// TraceOptions holds the trace command's flags and what Complete derives.
type TraceOptions struct {
	genericiooptions.IOStreams

	Hook            string
	RawArgs         []string
	Container       string
	Duration        time.Duration
	MaxEvents       int64
	MaxSize         string
	Output          string
	Image           string
	HelperNamespace string
	StartTimeout    time.Duration
	StopTimeout     time.Duration
	DryRun          bool
	Quiet           bool
	// Color is the root command's --color, shared by every subcommand.
	Color string

	// Derived by Validate and Complete.
	hookArgs  map[string]string
	maxBytes  int64
	namespace string
	podName   string
	client    kubernetes.Interface
	attacher  Attacher
	// newSessionID is a field so tests can fix the helper's name.
	newSessionID func() string
	// signals delivers stop requests; tests inject their own.
	signals <-chan os.Signal
}

// NewTraceOptions returns the defaults.
func NewTraceOptions(streams genericiooptions.IOStreams) *TraceOptions {
	return &TraceOptions{
		IOStreams:    streams,
		Output:       hooks.OutputText,
		Color:        ColorAuto,
		Image:        DefaultImage(),
		StartTimeout: 2 * time.Minute,
		StopTimeout:  20 * time.Second,
		newSessionID: func() string { return rand.String(5) },
	}
}

// AddFlags binds the options to flags, with their current values as defaults.
func (o *TraceOptions) AddFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.Hook, "hook", o.Hook, "hook to run (see 'kubectl trace hooks'): "+strings.Join(hooks.Names(), ", "))
	f.StringArrayVar(&o.RawArgs, "arg", o.RawArgs, "hook parameter as key=value; repeat for more (see 'kubectl trace hooks HOOK')")
	f.StringVarP(&o.Container, "container", "c", o.Container, "container to trace; defaults to the pod's default container")
	f.DurationVar(&o.Duration, "duration", o.Duration, "stop after this long (e.g. 10s, 5m); 0 traces until Ctrl-C")
	f.StringVarP(&o.Output, "output", "o", o.Output, "format of the trace data on stdout: text, json (one event per line) or pcap (packet hooks)")
	f.Int64Var(&o.MaxEvents, "max-events", o.MaxEvents, "stop after this many events; 0 is no limit")
	f.StringVar(&o.MaxSize, "max-size", o.MaxSize, "stop after this much trace data, such as 100Mi or 1G (whole records, so a pcap stays readable)")
	f.StringVar(&o.Image, "image", o.Image, "tracer image the helper runs")
	f.StringVar(&o.HelperNamespace, "helper-namespace", o.HelperNamespace, "namespace of the helper pod; defaults to the target's namespace")
	f.DurationVar(&o.StartTimeout, "start-timeout", o.StartTimeout, "how long to wait for the helper to start")
	f.BoolVar(&o.DryRun, "dry-run", o.DryRun, "print the helper pod as YAML and create nothing")
	f.BoolVarP(&o.Quiet, "quiet", "q", o.Quiet, "print no progress and no summary on stderr, only warnings and errors")
	_ = cmd.RegisterFlagCompletionFunc("hook", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		var out []string
		for _, d := range hooks.Catalogue() {
			out = append(out, d.Name+"\t"+d.Summary)
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	})
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{hooks.OutputText, hooks.OutputJSON, hooks.OutputPCAP}, cobra.ShellCompDirectiveNoFileComp))
}

// Complete resolves the namespace and the clients.
func (o *TraceOptions) Complete(getter genericclioptions.RESTClientGetter, args []string) error {
	if len(args) != 1 {
		return errors.New("one target is required, such as pod/NAME")
	}
	_, name, err := parseTargetArg(args[0])
	if err != nil {
		return err
	}
	o.podName = name
	if o.namespace, _, err = getter.ToRawKubeConfigLoader().Namespace(); err != nil {
		return fmt.Errorf("reading the namespace from kubeconfig: %w", err)
	}
	config, err := getter.ToRESTConfig()
	if err != nil {
		return fmt.Errorf("reading kubeconfig: %w", err)
	}
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return fmt.Errorf("creating the API client: %w", err)
	}
	o.client = client
	if o.attacher == nil {
		o.attacher = remoteAttacher{config: config, client: client}
	}
	return nil
}

// Validate checks the flags on their own, before anything touches the cluster.
func (o *TraceOptions) Validate() error {
	if o.Hook == "" {
		return fmt.Errorf("--hook is required: choose one of %s (see 'kubectl trace hooks')", strings.Join(hooks.Names(), ", "))
	}
	d, ok := hooks.Lookup(o.Hook)
	if !ok {
		return fmt.Errorf("unknown hook %q: choose one of %s (see 'kubectl trace hooks')", o.Hook, strings.Join(hooks.Names(), ", "))
	}
	given, err := parseArgs(o.RawArgs)
	if err != nil {
		return err
	}
	if o.hookArgs, err = d.ResolveArgs(given); err != nil {
		return err
	}
	outputs := d.Outputs
	if !contains(outputs, o.Output) {
		return fmt.Errorf("hook %q cannot write -o %q: choose one of %s", o.Hook, o.Output, strings.Join(outputs, ", "))
	}
	if o.Duration < 0 {
		return fmt.Errorf("--duration %s is negative: give a positive duration such as 10s, or 0 to trace until Ctrl-C", o.Duration)
	}
	if o.MaxEvents < 0 {
		return fmt.Errorf("--max-events %d is negative: give a positive count, or 0 for no limit", o.MaxEvents)
	}
	if o.MaxSize != "" {
		q, err := resource.ParseQuantity(o.MaxSize)
		if err != nil || q.Sign() < 0 {
			return fmt.Errorf("--max-size %q is not a size: write it like 100Mi, 1G or 500000", o.MaxSize)
		}
		o.maxBytes = q.Value()
	}
	if o.Output == hooks.OutputPCAP && isTerminal(o.Out) {
		return errors.New("refusing to write binary pcap to a terminal: redirect stdout to a file (> capture.pcap) or pipe it (| tcpdump -r -)")
	}
	if o.StartTimeout <= 0 {
		return fmt.Errorf("--start-timeout %s must be positive", o.StartTimeout)
	}
	if err := validColor(o.Color); err != nil {
		return err
	}
	if o.Image == "" {
		return errors.New("--image is empty: name the tracer image")
	}
	return nil
}

// Run traces the target until the duration ends, the user stops it, or the
// helper ends; the helper pod is deleted on every path.
func (o *TraceOptions) Run(ctx context.Context) error {
	u := newUI(o.ErrOut, o.Color, o.Quiet)
	target, defaulted, err := resolvePod(ctx, o.client, o.namespace, o.podName, o.Container)
	if err != nil {
		return err
	}
	if defaulted != "" {
		u.step("%s", defaulted)
	}
	if err := checkNode(ctx, o.client, target.Node); err != nil {
		return err
	}
	session := o.newSessionID()
	req := hooks.Request{
		Version:   hooks.ProtocolVersion,
		SessionID: session,
		Hook:      o.Hook,
		Args:      o.hookArgs,
		Output:    o.Output,
		Targets:   []hooks.Target{target},
		MaxEvents: o.MaxEvents,
		MaxBytes:  o.maxBytes,
	}
	if err := req.Validate(); err != nil {
		return fmt.Errorf("building the request: %w", err)
	}
	encoded, err := req.Encode()
	if err != nil {
		return err
	}
	helperNS := o.HelperNamespace
	if helperNS == "" {
		helperNS = target.Namespace
	}
	pod := HelperPod(HelperParams{
		Name:           HelperNamePrefix + session,
		Namespace:      helperNS,
		Node:           target.Node,
		Image:          o.Image,
		Request:        req,
		EncodedRequest: encoded,
		Deadline:       helperDeadline(o.Duration),
	})
	if o.DryRun {
		b, err := yaml.Marshal(pod)
		if err != nil {
			return fmt.Errorf("printing the helper pod: %w", err)
		}
		_, err = o.Out.Write(b)
		return err
	}

	if err := preflight(ctx, o.client, pod); err != nil {
		return err
	}

	// Stop requests: the first closes stdin so the helper flushes and
	// reports; the second gives up waiting.
	sigs := o.signals
	if sigs == nil {
		ch := make(chan os.Signal, 2)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(ch)
		sigs = ch
	}
	// A closed stdout must not kill the plugin before it cleans up: the
	// write then fails with EPIPE and the session stops.
	signal.Ignore(syscall.SIGPIPE)

	u.ok("target %s on node %q", target, target.Node)
	u.step("creating helper pod %s/%s", helperNS, pod.Name)
	if _, err := o.client.CoreV1().Pods(helperNS).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating helper pod on node %q: %w", target.Node, err)
	}
	result, runErr := o.stream(ctx, u, helperNS, pod.Name, target, sigs)
	delErr := deleteHelper(o.client, helperNS, pod.Name, 30*time.Second)
	if result != nil {
		if runErr != nil {
			result.Failed, result.Ended = true, "failed"
		}
		u.summary([]sessionResult{*result})
	}
	return errors.Join(runErr, delErr)
}

// stream waits for the helper, attaches, and relays until the session ends.
// The result is nil when the session never started streaming.
func (o *TraceOptions) stream(ctx context.Context, u *ui, ns, name string, target hooks.Target, sigs <-chan os.Signal) (*sessionResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A stop request while the helper starts ends the wait.
	waitDone := make(chan struct{})
	var interrupted atomic.Bool
	go func() {
		select {
		case <-sigs:
			interrupted.Store(true)
			cancel()
		case <-waitDone:
		}
	}()
	err := waitRunning(ctx, o.client, ns, name, o.StartTimeout, u)
	close(waitDone)
	if interrupted.Load() {
		return nil, errors.New("interrupted while the helper was starting")
	}
	if err != nil {
		return nil, err
	}

	status := newStatusWriter(u, o.Hook)
	out := newStopOnErrorWriter(o.Out)
	stdinR, stdinW := io.Pipe()
	attachDone := make(chan error, 1)
	start := time.Now()
	go func() {
		attachDone <- o.attacher.Attach(ctx, ns, name, HelperContainerName, stdinR, out, status)
	}()
	// The go byte: the helper holds its data until the plugin is attached.
	go func() { _, _ = stdinW.Write([]byte{'\n'}) }()

	var timer <-chan time.Time
	if o.Duration > 0 {
		timer = time.After(o.Duration)
	}
	live := time.NewTicker(250 * time.Millisecond)
	defer live.Stop()
	broken := out.broken
	ended := "helper ended"
	var attachErr error
	stopping := false
	var stopDeadline <-chan time.Time
	stop := func(why string) {
		if !stopping {
			stopping = true
			ended = why
			_ = stdinW.Close()
			stopDeadline = time.After(o.StopTimeout)
		}
	}
loop:
	for {
		select {
		case attachErr = <-attachDone:
			break loop
		case <-live.C:
			u.setLive(fmt.Sprintf("%s: %d events", target, out.records()))
		case <-timer:
			stop("duration reached")
		case <-broken:
			broken = nil
			u.step("stdout was closed: stopping")
			stop("stdout closed")
		case <-sigs:
			if stopping {
				u.warn("stopping now, without waiting for the helper")
				cancel()
			}
			stop("interrupted")
		case <-stopDeadline:
			u.warn("the helper did not finish within %s of the stop request", o.StopTimeout)
			cancel()
		}
	}
	u.endLive()
	status.flush()
	stats, helperErrs := status.result()
	result := &sessionResult{Target: target.String(), Hook: o.Hook, Events: out.records(), Duration: time.Since(start), Ended: ended}
	if stats != nil {
		result.Events, result.Lost = stats.Events, stats.Lost
		if stats.Ended != "" && !stopping {
			result.Ended = stats.Ended
		}
		result.Duration = time.Duration(stats.Seconds * float64(time.Second))
	}

	// How did the helper end? Its exit code is the truth; the stream error
	// only matters when the helper did not finish cleanly.
	getCtx, getCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer getCancel()
	pod, getErr := o.client.CoreV1().Pods(ns).Get(getCtx, name, metav1.GetOptions{})
	where := fmt.Sprintf("tracing %s on node %q", target, target.Node)
	if len(helperErrs) > 0 {
		return result, fmt.Errorf("%s: %s", where, strings.Join(helperErrs, "; "))
	}
	if getErr == nil {
		for _, cs := range pod.Status.ContainerStatuses {
			if cs.Name == HelperContainerName && cs.State.Terminated != nil {
				if err := terminatedError(pod, cs.State.Terminated); err != nil {
					return result, fmt.Errorf("%s: %w", where, err)
				}
				if stats == nil {
					return result, fmt.Errorf("%s: the helper ended without final statistics: data may be incomplete", where)
				}
				return result, nil
			}
		}
	}
	if attachErr != nil {
		return result, fmt.Errorf("%s: the attach stream ended: %w", where, attachErr)
	}
	if stats == nil {
		return result, fmt.Errorf("%s: the stream ended before the helper reported final statistics", where)
	}
	return result, nil
}

// NewCmdTrace builds the kubectl-trace command tree.
func NewCmdTrace(streams genericiooptions.IOStreams) *cobra.Command {
	flags := genericclioptions.NewConfigFlags(true)
	o := NewTraceOptions(streams)
	cmd := &cobra.Command{
		Use:     "kubectl-trace TARGET --hook HOOK [flags]",
		Short:   "Trace a pod's containers with ftrace, eBPF or tcpdump",
		Long:    "Trace a running container with a kernel hook. A privileged helper pod starts on the target's node, attaches the hook to exactly that container and streams the events back: trace data on stdout, progress and statistics on stderr.",
		Example: traceExample,
		Annotations: map[string]string{
			cobra.CommandDisplayNameAnnotation: "kubectl trace",
		},
		Args:              cobra.MaximumNArgs(1),
		SilenceErrors:     true,
		ValidArgsFunction: completePods(flags),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			if err := o.Validate(); err != nil {
				return err
			}
			if err := o.Complete(flags, args); err != nil {
				return err
			}
			cmd.SilenceUsage = true
			return o.Run(cmd.Context())
		},
	}
	flags.AddFlags(cmd.PersistentFlags())
	cmd.PersistentFlags().StringVar(&o.Color, "color", o.Color, "colour on stderr and in tables: auto (terminals, unless NO_COLOR is set), always or never")
	_ = cmd.RegisterFlagCompletionFunc("color", cobra.FixedCompletions([]string{ColorAuto, ColorAlways, ColorNever}, cobra.ShellCompDirectiveNoFileComp))
	o.AddFlags(cmd)
	_ = cmd.RegisterFlagCompletionFunc("container", completeContainers(flags))
	_ = cmd.RegisterFlagCompletionFunc("arg", completeArgs)
	_ = cmd.RegisterFlagCompletionFunc("namespace", completeNamespaces(flags))
	cmd.AddCommand(NewCmdHooks(streams, &o.Color), NewCmdVersion(streams), NewCmdCleanup(flags, streams))
	return cmd
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// parseArgs turns repeated --arg key=value flags into a map.
func parseArgs(raw []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range raw {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--arg %q is not key=value: write it like --arg filter='tcp port 80'", kv)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("--arg %s is given twice: give each parameter once", k)
		}
		out[k] = v
	}
	return out, nil
}
