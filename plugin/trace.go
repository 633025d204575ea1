package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"github.com/ktrace-dev/kubectl-trace/plugin/session"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/resource"
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

	# Trace every pod of a deployment, one helper per node, lines prefixed with pod/container
	kubectl trace deploy/web --hook sched

	# Trace the pods matching a selector in every namespace, one file per pod
	kubectl trace -l app=web -A --hook sched -o json --output-dir traces/

	# Trace container app of pod web for ten seconds, as JSON lines, into a file
	kubectl trace pod/web -c app --hook sched --duration 10s -o json > sched.jsonl

	# Trace every task on node worker-1 (not one container) for 30 seconds: one helper pod on that node
	kubectl trace node/worker-1 --hook sched --duration 30s

	# Capture the traffic of two nodes' host network namespaces, one pcap per node
	kubectl trace node/worker-1 node/worker-2 --hook tcpdump -o pcap --output-dir caps/

	# Show the helper pod that would be created, and create nothing
	kubectl trace pod/web --hook sched --dry-run

	# List the hooks
	kubectl trace hooks`)

// TraceOptions holds the trace command's flags and what Complete derives.
type TraceOptions struct {
	genericiooptions.IOStreams

	Hook            string
	Selector        string
	AllNamespaces   bool
	OutputDir       string
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
	Privileged      bool
	Mode            string
	Quiet           bool
	// Color is the root command's --color, shared by every subcommand.
	Color string

	// Derived by Complete.
	getter genericclioptions.RESTClientGetter
	query  targetQuery
	// nodes are the whole nodes named (node/NAME); the query names no pods then.
	nodes []string
	// namespace is the kubeconfig's, where a whole node's helper runs
	// unless --helper-namespace says otherwise.
	namespace string
	// outIsTerminal: stdout is a terminal, where pcap must not go.
	outIsTerminal bool
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
		Mode:         wire.ModeNode,
		Image:        DefaultImage(),
		StartTimeout: 2 * time.Minute,
		StopTimeout:  30 * time.Second,
		newSessionID: func() string { return rand.String(5) },
	}
}

// AddFlags binds the options to flags, with their current values as defaults.
func (o *TraceOptions) AddFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.Hook, "hook", o.Hook, "hook to run (see 'kubectl trace hooks'): "+strings.Join(hooks.Names(), ", "))
	f.StringVarP(&o.Selector, "selector", "l", o.Selector, "trace the pods matching this label selector, and the pods that start to match while the trace runs")
	f.BoolVarP(&o.AllNamespaces, "all-namespaces", "A", o.AllNamespaces, "with -l, look for pods in every namespace")
	f.StringVar(&o.OutputDir, "output-dir", o.OutputDir, "write one file per target into this directory instead of stdout (needed for -o pcap with several targets)")
	f.StringArrayVar(&o.RawArgs, "arg", o.RawArgs, "hook parameter as key=value; repeat for more (see 'kubectl trace hooks HOOK')")
	f.StringVarP(&o.Container, "container", "c", o.Container, "container to trace; defaults to the pod's default container")
	f.DurationVar(&o.Duration, "duration", o.Duration, "stop after this long (e.g. 10s, 5m); 0 traces until Ctrl-C")
	f.StringVarP(&o.Output, "output", "o", o.Output, "format of the trace data on stdout: text, json (one event per line) or pcap (packet hooks)")
	f.Int64Var(&o.MaxEvents, "max-events", o.MaxEvents, "stop after this many events; 0 is no limit")
	f.StringVar(&o.MaxSize, "max-size", o.MaxSize, "stop after this much trace data, such as 100Mi or 1G (whole records, so a pcap stays readable)")
	f.StringVar(&o.Image, "image", o.Image, "tracer image the helper runs")
	f.StringVar(&o.HelperNamespace, "helper-namespace", o.HelperNamespace, "namespace of the helper pod; defaults to the target's namespace")
	f.DurationVar(&o.StartTimeout, "start-timeout", o.StartTimeout, "how long to wait for the helper to start")
	f.DurationVar(&o.StopTimeout, "stop-timeout", o.StopTimeout, "how long to wait for the helpers to flush and report after the trace stops")
	f.BoolVar(&o.DryRun, "dry-run", o.DryRun, "print the helper pod as YAML and create nothing")
	f.StringVar(&o.Mode, "mode", o.Mode, "where the tracer runs: node (a helper pod on the target's node) or ephemeral (an ephemeral container in the target pod, which stays there afterwards)")
	_ = cmd.RegisterFlagCompletionFunc("mode", cobra.FixedCompletions([]string{wire.ModeNode, wire.ModeEphemeral}, cobra.ShellCompDirectiveNoFileComp))
	f.BoolVar(&o.Privileged, "privileged", o.Privileged, "run the helper as a privileged container instead of with the hook's capabilities only")
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

// Complete derives what the arguments and the kubeconfig imply, without a
// request to the cluster: the namespace, the targets asked for, and
// whether stdout is a terminal.
func (o *TraceOptions) Complete(getter genericclioptions.RESTClientGetter, args []string) error {
	ns, _, err := getter.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return fmt.Errorf("reading the namespace from kubeconfig: %w", err)
	}
	o.getter, o.namespace = getter, ns
	// A bare NAME means a pod, as in kubectl logs.
	args = slices.Clone(args)
	for i, a := range args {
		if !strings.Contains(a, "/") {
			args[i] = "pod/" + a
		}
	}
	o.query = targetQuery{Args: args, Selector: o.Selector, Namespace: ns, AllNamespaces: o.AllNamespaces}
	if o.nodes, err = resolveNodes(o.query); err != nil {
		return err
	}
	o.outIsTerminal = isTerminal(o.Out)
	return nil
}

// Validate checks the options, reading nothing but their fields.
func (o *TraceOptions) Validate() error {
	if o.Hook == "" {
		return fmt.Errorf("--hook is required: choose one of %s (see 'kubectl trace hooks')", strings.Join(hooks.Names(), ", "))
	}
	d, ok := hooks.Lookup(o.Hook)
	if !ok {
		return fmt.Errorf("unknown hook %q: choose one of %s (see 'kubectl trace hooks')", o.Hook, strings.Join(hooks.Names(), ", "))
	}
	if _, err := hookArgs(d, o.RawArgs); err != nil {
		return err
	}
	if !slices.Contains(d.Outputs, o.Output) {
		return fmt.Errorf("hook %q cannot write -o %q: choose one of %s", o.Hook, o.Output, strings.Join(d.Outputs, ", "))
	}
	if err := o.validateLimits(); err != nil {
		return err
	}
	if o.Mode != wire.ModeNode && o.Mode != wire.ModeEphemeral {
		return fmt.Errorf("--mode %q: choose node (a helper pod on the node) or ephemeral (a container in the target pod)", o.Mode)
	}
	if o.Mode == wire.ModeEphemeral && o.HelperNamespace != "" {
		return errors.New("--helper-namespace has no effect with --mode ephemeral: the tracer runs in the target pod")
	}
	if o.AllNamespaces && o.Selector == "" {
		return errors.New("-A needs -l: name the pods to trace in every namespace with a selector")
	}
	if err := validColor(o.Color); err != nil {
		return err
	}
	if o.Image == "" {
		return errors.New("--image is empty: name the tracer image")
	}
	if len(o.nodes) > 0 {
		return o.validateNodes(d)
	}
	return nil
}

// validateLimits checks the durations, the limits and where pcap goes.
func (o *TraceOptions) validateLimits() error {
	if o.Duration < 0 {
		return fmt.Errorf("--duration %s is negative: give a positive duration such as 10s, or 0 to trace until Ctrl-C", o.Duration)
	}
	if o.MaxEvents < 0 {
		return fmt.Errorf("--max-events %d is negative: give a positive count, or 0 for no limit", o.MaxEvents)
	}
	if _, err := parseSize(o.MaxSize); err != nil {
		return err
	}
	if o.Output == hooks.OutputPCAP && o.outIsTerminal {
		return errors.New("refusing to write binary pcap to a terminal: redirect stdout to a file (> capture.pcap) or pipe it (| tcpdump -r -)")
	}
	if o.StartTimeout <= 0 {
		return fmt.Errorf("--start-timeout %s must be positive", o.StartTimeout)
	}
	if o.StopTimeout <= 0 {
		return fmt.Errorf("--stop-timeout %s must be positive", o.StopTimeout)
	}
	return nil
}

// validateNodes checks the flags that a whole-node trace (node/NAME)
// cannot take.
func (o *TraceOptions) validateNodes(d hooks.Descriptor) error {
	if o.Mode == wire.ModeEphemeral {
		return errors.New("--mode ephemeral cannot trace a whole node: an ephemeral container lives in one pod and sees only it; drop --mode to trace node/NAME from a helper pod, or name pods to use ephemeral mode")
	}
	if o.Container != "" {
		return fmt.Errorf("-c %s names a container, but a whole node is traced, every container and host process on it: drop -c, or name the pod (pod/NAME -c %s)", o.Container, o.Container)
	}
	return d.CheckNodeWide()
}

// hookArgs resolves the --arg flags against the hook's parameters.
func hookArgs(d hooks.Descriptor, raw []string) (map[string]string, error) {
	given, err := parseArgs(raw)
	if err != nil {
		return nil, err
	}
	return d.ResolveArgs(given)
}

// parseSize reads --max-size; "" is no limit.
func parseSize(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	q, err := resource.ParseQuantity(s)
	if err != nil || q.Sign() < 0 {
		return 0, fmt.Errorf("--max-size %q is not a size: write it like 100Mi, 1G or 500000", s)
	}
	return q.Value(), nil
}

// Run reads the clients and the targets' sources from the cluster, and
// traces until the duration ends, the user stops it, or the helpers end;
// the helpers are removed on every path.
func (o *TraceOptions) Run(ctx context.Context) error {
	c, err := connect(o.getter)
	if err != nil {
		return err
	}
	if len(o.nodes) == 0 {
		if c.sources, err = resolveSources(o.getter, o.query); err != nil {
			return err
		}
	}
	return o.trace(ctx, c)
}

// cluster is what Run reads before it traces.
type cluster struct {
	client   kubernetes.Interface
	attacher session.Attacher
	sources  []session.Source
}

// connect builds the API client and the attacher from the kubeconfig.
func connect(getter genericclioptions.RESTClientGetter) (cluster, error) {
	config, err := getter.ToRESTConfig()
	if err != nil {
		return cluster{}, fmt.Errorf("reading kubeconfig: %w", err)
	}
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return cluster{}, fmt.Errorf("creating the API client: %w", err)
	}
	return cluster{client: client, attacher: session.NewRemoteAttacher(config, client)}, nil
}

// trace runs the session: --dry-run prints its plans; otherwise signals
// and a closed stdout stop it, and its summary is printed.
func (o *TraceOptions) trace(ctx context.Context, c cluster) error {
	u := newUI(o.ErrOut, o.Color, o.Quiet)
	report := traceReport{ui: u, hook: o.Hook, counting: o.Output != hooks.OutputPCAP}
	stdout := newStopOnErrorWriter(o.Out)
	var dir *session.DirOutput
	var out session.Output = newStdoutOutput(stdout, o.Output, newStyles(o.Out, o.Color))
	if o.OutputDir != "" {
		dir = session.NewDirOutput(o.OutputDir, o.Output)
		out = dir
	}
	s, err := session.New(o.config(c, report, out))
	if err != nil {
		return err
	}
	if o.DryRun {
		return printPlans(ctx, o.Out, s)
	}
	defer o.stopOn(s, stdout.broken, u)()
	sum, err := s.Run(ctx)
	var files []string
	if dir != nil {
		files = dir.Paths()
	}
	report.summarize(sum, files)
	return err
}

// config is the engine's config: the one place where the options become
// typed values. Validate has checked them.
func (o *TraceOptions) config(c cluster, r session.Reporter, out session.Output) session.Config {
	d, _ := hooks.Lookup(o.Hook)
	args, _ := hookArgs(d, o.RawArgs)
	maxBytes, _ := parseSize(o.MaxSize)
	var mode session.Mode = session.NodeMode{Namespace: o.HelperNamespace, NodeNamespace: o.namespace}
	if o.Mode == wire.ModeEphemeral {
		mode = session.EphemeralMode{}
	}
	return session.Config{
		ID: o.newSessionID(), Client: c.client, Attacher: c.attacher,
		Sources: c.sources, Nodes: o.nodes, Container: o.Container,
		Hook: d, Args: args, Format: o.Output, MaxEvents: o.MaxEvents, MaxBytes: maxBytes, Duration: o.Duration,
		Mode: mode, Image: o.Image, Privileged: o.Privileged, StartTimeout: o.StartTimeout, StopTimeout: o.StopTimeout,
		Outputs: []session.Output{out}, PerTarget: o.OutputDir != "", Reporter: r,
	}
}

// stopOn turns signals into stops of s (the first graceful, a second
// hard) and a closed stdout into a graceful stop; the func it returns
// stops listening.
func (o *TraceOptions) stopOn(s *session.Session, broken <-chan struct{}, u *ui) func() {
	sigs := o.signals
	var unnotify func()
	if sigs == nil {
		ch := make(chan os.Signal, 2)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		sigs, unnotify = ch, func() { signal.Stop(ch) }
	}
	// A closed stdout must not kill the plugin before it cleans up: the
	// write then fails with EPIPE and the session stops.
	signal.Ignore(syscall.SIGPIPE)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-sigs:
				s.Interrupt()
			case <-broken:
				broken = nil
				u.step("stdout was closed: stopping")
				s.Stop("stdout closed")
			case <-done:
				return
			}
		}
	}()
	return func() {
		close(done)
		if unnotify != nil {
			unnotify()
		}
	}
}

// printPlans prints the helpers a session would start, as YAML.
func printPlans(ctx context.Context, w io.Writer, s *session.Session) error {
	plans, err := s.Plan(ctx)
	if err != nil {
		return err
	}
	for i, p := range plans {
		if i > 0 {
			fmt.Fprintln(w, "---")
		}
		comment, obj := p.Helper.DryRun()
		if comment != "" {
			fmt.Fprintf(w, "# %s\n", comment)
		}
		b, err := yaml.Marshal(obj)
		if err != nil {
			return fmt.Errorf("printing the helper: %w", err)
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}
