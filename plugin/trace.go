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
	"sync"
	"syscall"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
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

	// Derived by Validate and Complete.
	hookArgs map[string]string
	maxBytes int64
	sources  []podSource
	// nodes are the whole nodes named (node/NAME); sources is empty then.
	nodes []string
	// namespace is the kubeconfig's, where a whole node's helper runs
	// unless --helper-namespace says otherwise.
	namespace string
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

// Complete resolves the targets' sources, the namespace and the clients.
func (o *TraceOptions) Complete(getter genericclioptions.RESTClientGetter, args []string) error {
	ns, _, err := getter.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return fmt.Errorf("reading the namespace from kubeconfig: %w", err)
	}
	o.namespace = ns
	// A bare NAME means a pod, as in kubectl logs.
	for i, a := range args {
		if !strings.Contains(a, "/") {
			args[i] = "pod/" + a
		}
	}
	q := targetQuery{Args: args, Selector: o.Selector, Namespace: ns, AllNamespaces: o.AllNamespaces}
	if o.nodes, err = resolveNodes(q); err != nil {
		return err
	}
	if len(o.nodes) > 0 {
		if err := o.validateNodes(); err != nil {
			return err
		}
	} else if o.sources, err = resolveSources(getter, q); err != nil {
		return err
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

// validateNodes checks the flags that a whole-node trace (node/NAME)
// cannot take, before anything touches the cluster.
func (o *TraceOptions) validateNodes() error {
	if o.Mode == wire.ModeEphemeral {
		return errors.New("--mode ephemeral cannot trace a whole node: an ephemeral container lives in one pod and sees only it; drop --mode to trace node/NAME from a helper pod, or name pods to use ephemeral mode")
	}
	if o.Container != "" {
		return fmt.Errorf("-c %s names a container, but a whole node is traced, every container and host process on it: drop -c, or name the pod (pod/NAME -c %s)", o.Container, o.Container)
	}
	d, _ := hooks.Lookup(o.Hook) // Validate checked it exists
	return d.CheckNodeWide()
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
	if !slices.Contains(outputs, o.Output) {
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
	if o.StopTimeout <= 0 {
		return fmt.Errorf("--stop-timeout %s must be positive", o.StopTimeout)
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
	return nil
}

// Run traces the target until the duration ends, the user stops it, or the
// helper ends; the helper pod is deleted on every path.
func (o *TraceOptions) Run(ctx context.Context) error {
	u := newUI(o.ErrOut, o.Color, o.Quiet)
	var targets []wire.Target
	if len(o.nodes) > 0 {
		targets = nodeTargets(o.nodes)
	} else {
		var err error
		if targets, err = initialTargets(ctx, o.client, o.sources, o.Container, u.step); err != nil {
			return err
		}
	}
	live := false
	for _, s := range o.sources {
		live = live || s.live()
	}
	framed := len(targets) > 1 || live || o.OutputDir != ""
	if o.Output == hooks.OutputPCAP && framed && o.OutputDir == "" {
		return fmt.Errorf("-o pcap with %d target(s) or a selector needs --output-dir DIR: one pcap file per target", len(targets))
	}
	nodes, groups := byNode(targets)
	if len(o.nodes) > 0 {
		// Reading the node is what tells a typo from a node: check the
		// right first, so a refusal says what to ask for.
		if err := checkNodeAccess(ctx, o.client); err != nil {
			return err
		}
	}
	for _, n := range nodes {
		if err := checkNode(ctx, o.client, n, len(o.nodes) > 0); err != nil {
			return err
		}
	}
	session := o.newSessionID()
	d, _ := hooks.Lookup(o.Hook)
	count := 0
	// newPlan builds what one session runs: a helper pod for a node's
	// targets, or an ephemeral container for one target.
	newPlan := func(node string, ts []wire.Target) (plan, error) {
		req := wire.Request{
			Version:   wire.ProtocolVersion,
			SessionID: session,
			Hook:      o.Hook,
			Args:      o.hookArgs,
			Output:    o.Output,
			Mode:      o.Mode,
			Framed:    framed,
			Compress:  true,
			Targets:   ts,
			MaxEvents: o.MaxEvents,
			MaxBytes:  o.maxBytes,
		}
		if err := req.Validate(); err != nil {
			return plan{}, fmt.Errorf("building the request for node %q: %w", node, err)
		}
		encoded, err := req.Encode()
		if err != nil {
			return plan{}, err
		}
		name := HelperNamePrefix + session
		if count > 0 {
			name = fmt.Sprintf("%s-%d", name, count)
		}
		count++
		if o.Mode == wire.ModeEphemeral {
			ec := EphemeralContainer(EphemeralParams{Name: name, Image: o.Image, Target: ts[0].Container,
				EncodedRequest: encoded, Needs: d.Needs, Privileged: o.Privileged})
			return plan{node: node, targets: ts, ephemeral: &ec}, nil
		}
		ns := o.HelperNamespace
		if ns == "" {
			ns = ts[0].Namespace
		}
		if ns == "" {
			// A whole node has no namespace: the helper runs in the
			// kubeconfig's.
			ns = o.namespace
		}
		return plan{node: node, targets: ts, pod: HelperPod(HelperParams{
			Name: name, Namespace: ns, Node: node, Image: o.Image,
			Request: req, EncodedRequest: encoded, Deadline: helperDeadline(o.Duration),
			Needs: d.Needs, Privileged: o.Privileged,
		})}, nil
	}
	var plans []plan
	if o.Mode == wire.ModeEphemeral {
		for _, t := range targets {
			p, err := newPlan(t.Node, []wire.Target{t})
			if err != nil {
				return err
			}
			plans = append(plans, p)
		}
	} else {
		for _, n := range nodes {
			p, err := newPlan(n, groups[n])
			if err != nil {
				return err
			}
			plans = append(plans, p)
		}
	}
	if o.DryRun {
		for i, p := range plans {
			if i > 0 {
				fmt.Fprintln(o.Out, "---")
			}
			if err := p.print(o.Out); err != nil {
				return err
			}
		}
		return nil
	}
	if err := o.preflight(ctx, plans); err != nil {
		return err
	}
	if o.Mode == wire.ModeEphemeral {
		u.warn("ephemeral containers cannot be removed from a pod: each traced pod keeps a stopped %s* container in its spec until the pod is deleted", HelperNamePrefix+session)
	}
	if o.OutputDir != "" {
		if err := os.MkdirAll(o.OutputDir, 0o755); err != nil {
			return fmt.Errorf("creating --output-dir: %w", err)
		}
	}

	// Stop requests: the first closes every helper's stdin so they flush
	// and report; the second gives up waiting.
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

	out := newStopOnErrorWriter(o.Out)
	outs := newOutputs(out, o.Output, o.OutputDir, framed && o.OutputDir == "" && o.Output == hooks.OutputText, newStyles(o.Out, o.Color))
	hard, hardCancel := context.WithCancel(ctx)
	defer hardCancel()
	stop := make(chan struct{})
	var stopOnce sync.Once
	ended := "helper ended"
	stopAll := func(why string) {
		stopOnce.Do(func() {
			ended = why
			close(stop)
		})
	}

	var mu sync.Mutex
	var sessions []*helperSession
	byNodeSession := map[string]*helperSession{}
	known := map[string]bool{}
	var wg sync.WaitGroup
	done := make(chan struct{}, 64)
	start := func(p plan) {
		var s *helperSession
		if p.ephemeral != nil {
			s = newEphemeralSession(o, u, outs, p.targets[0], *p.ephemeral, framed)
		} else {
			s = newHelperSession(o, u, outs, p.node, p.pod, p.targets, framed)
		}
		mu.Lock()
		sessions = append(sessions, s)
		if p.ephemeral == nil {
			byNodeSession[p.node] = s
		}
		for _, t := range p.targets {
			known[t.PodUID] = true
		}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = s.run(hard, stop)
			done <- struct{}{}
		}()
	}
	u.ok("%d target(s) on %d node(s)", len(targets), len(nodes))
	for _, p := range plans {
		start(p)
	}

	// Selectors are followed: pods that start to match join, pods that go
	// away leave, each announced on stderr.
	if live {
		go o.follow(hard, stop, u, func(p *corev1.Pod) {
			t, _, err := targetFromPod(p, o.Container)
			if err != nil {
				return
			}
			mu.Lock()
			if known[t.PodUID] {
				mu.Unlock()
				return
			}
			known[t.PodUID] = true
			s := byNodeSession[t.Node]
			mu.Unlock()
			u.step("+ pod %s/%s joined on node %q", t.Namespace, t.Pod, t.Node)
			if s != nil && s.add(t) {
				return
			}
			mu.Lock()
			pl, err := newPlan(t.Node, []wire.Target{t})
			mu.Unlock()
			if err != nil {
				u.warn("%s", err)
				return
			}
			if o.Mode == wire.ModeEphemeral {
				if err := o.preflight(hard, []plan{pl}); err != nil {
					u.warn("%s/%s cannot be traced: %v", t.Namespace, t.Pod, err)
					return
				}
			}
			select {
			case <-stop:
			default:
				start(pl)
			}
		}, func(uid, ns, name string) {
			mu.Lock()
			ss := append([]*helperSession(nil), sessions...)
			traced := known[uid]
			delete(known, uid)
			mu.Unlock()
			// Announced whether the helper noticed first (its processes
			// gone) or the API server did.
			if traced {
				u.step("- pod %s/%s left", ns, name)
			}
			for _, s := range ss {
				s.remove(uid, "pod deleted")
			}
		})
	}

	// --duration counts from the moment data flows, not from the command's
	// start: a slow image pull must not eat into the trace.
	timerC := make(chan time.Time, 1)
	var timer <-chan time.Time = timerC
	if o.Duration > 0 {
		go func() {
			mu.Lock()
			first := sessions[0]
			mu.Unlock()
			select {
			case <-first.started:
			case <-stop:
				return
			}
			select {
			case <-time.After(o.Duration):
				timerC <- time.Now()
			case <-stop:
			}
		}()
	}
	live250 := time.NewTicker(250 * time.Millisecond)
	defer live250.Stop()
	broken := out.broken
	finished := 0
wait:
	for {
		select {
		case <-done:
			finished++
			mu.Lock()
			all := finished == len(sessions)
			mu.Unlock()
			if all && (!live || isClosed(stop)) {
				break wait
			}
		case <-live250.C:
			if o.Output != hooks.OutputPCAP {
				u.setLive(fmt.Sprintf("%d events", out.records()))
			}
			// Pods named by the user: when every one has ended, so has the trace.
			if !live && !isClosed(stop) {
				mu.Lock()
				all := len(sessions) > 0
				for _, s := range sessions {
					all = all && s.allEnded()
				}
				mu.Unlock()
				if all {
					stopAll("targets ended")
				}
			}
		case <-timer:
			stopAll("duration reached")
		case <-broken:
			broken = nil
			u.step("stdout was closed: stopping")
			stopAll("stdout closed")
		case <-sigs:
			if isClosed(stop) {
				u.warn("stopping now, without waiting for the helpers")
				hardCancel()
			}
			stopAll("interrupted")
		}
	}
	stopAll(ended)
	wg.Wait()
	u.endLive()
	paths, closeErr := outs.close()
	var results []sessionResult
	var errs []error
	for _, s := range sessions {
		results = append(results, s.results(ended)...)
		if s.err != nil {
			errs = append(errs, s.err)
		}
		if s.stats != nil && s.stats.Lost > 0 && len(s.targets) > 1 {
			u.warn("node %q: %d events lost in the kernel", s.node, s.stats.Lost)
		}
	}
	u.summary(results)
	for _, p := range paths {
		u.step("wrote %s", p)
	}
	if closeErr != nil {
		errs = append(errs, fmt.Errorf("closing output files: %w", closeErr))
	}
	for _, r := range results {
		if r.Failed && len(errs) == 0 {
			errs = append(errs, fmt.Errorf("tracing %s failed: %s", r.Target, r.Ended))
		}
	}
	return errors.Join(errs...)
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// follow polls the live sources and reports pods that start to run and pods
// that go away, until stop.
func (o *TraceOptions) follow(ctx context.Context, stop <-chan struct{}, u *ui, joined func(*corev1.Pod), left func(uid, ns, name string)) {
	seen := map[string][2]string{}
	first := true
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		now := map[string][2]string{}
		for _, s := range o.sources {
			if !s.live() {
				continue
			}
			pods, err := s.listPods(ctx, o.client)
			if err != nil {
				if ctx.Err() == nil {
					u.warn("following %s: %v", s.what, err)
				}
				continue
			}
			for i := range pods {
				p := &pods[i]
				if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
					continue
				}
				now[string(p.UID)] = [2]string{p.Namespace, p.Name}
				if _, ok := seen[string(p.UID)]; !ok || !first {
					joined(p)
				}
			}
		}
		if !first {
			for uid, ref := range seen {
				if _, ok := now[uid]; !ok {
					left(uid, ref[0], ref[1])
				}
			}
		}
		seen, first = now, false
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// NewCmdTrace builds the kubectl-trace command tree.
func NewCmdTrace(streams genericiooptions.IOStreams) *cobra.Command {
	flags := genericclioptions.NewConfigFlags(true)
	o := NewTraceOptions(streams)
	cmd := &cobra.Command{
		Use:   "kubectl-trace TARGET --hook HOOK [flags]",
		Short: "Trace a pod's containers with ftrace, eBPF or tcpdump",
		Long: "Trace a running container with a kernel hook. A privileged helper pod starts on the target's node, attaches the hook to exactly that container and streams the events back: trace data on stdout, progress and statistics on stderr.\n\n" +
			"node/NAME traces a whole node instead: every task on it, host processes and all containers, from one helper pod on that node (node mode only; not with pods in the same command; funcgraph refuses it).",
		Example: traceExample,
		Annotations: map[string]string{
			cobra.CommandDisplayNameAnnotation: "kubectl trace",
		},
		Args:          cobra.ArbitraryArgs,
		SilenceErrors: true,
		// Usage is for flag mistakes only, and kubectl points to --help
		// rather than printing it (see the flag error func below).
		SilenceUsage:      true,
		ValidArgsFunction: completePods(flags),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && o.Selector == "" {
				if cmd.Flags().NFlag() == 0 {
					return cmd.Help()
				}
				return errors.New("name a target, such as pod/NAME, deploy/NAME, node/NAME or -l app=web (see 'kubectl trace --help')")
			}
			if err := o.Validate(); err != nil {
				return err
			}
			if err := o.Complete(flags, args); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w\nSee '%s --help' for usage.", err, c.CommandPath())
	})
	flags.AddFlags(cmd.PersistentFlags())
	cmd.PersistentFlags().StringVar(&o.Color, "color", o.Color, "colour on stderr and in tables: auto (terminals, unless NO_COLOR is set), always or never")
	_ = cmd.RegisterFlagCompletionFunc("color", cobra.FixedCompletions([]string{ColorAuto, ColorAlways, ColorNever}, cobra.ShellCompDirectiveNoFileComp))
	o.AddFlags(cmd)
	_ = cmd.RegisterFlagCompletionFunc("container", completeContainers(flags))
	_ = cmd.RegisterFlagCompletionFunc("arg", completeArgs)
	_ = cmd.RegisterFlagCompletionFunc("namespace", completeNamespaces(flags))
	cmd.AddCommand(NewCmdHooks(streams, &o.Color), NewCmdVersion(streams), NewCmdCleanup(flags, streams), NewCmdExec(flags, streams, &o.Color))
	return cmd
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

// plan is what one session runs: a helper pod, or an ephemeral container.
type plan struct {
	node      string
	targets   []wire.Target
	pod       *corev1.Pod
	ephemeral *corev1.EphemeralContainer
}

// print writes the plan as YAML for --dry-run.
func (p plan) print(w io.Writer) error {
	var obj any = p.pod
	if p.ephemeral != nil {
		t := p.targets[0]
		fmt.Fprintf(w, "# ephemeral container for pod %s/%s\n", t.Namespace, t.Pod)
		obj = p.ephemeral
	}
	b, err := yaml.Marshal(obj)
	if err != nil {
		return fmt.Errorf("printing the helper: %w", err)
	}
	_, err = w.Write(b)
	return err
}

// preflight checks every plan before anything is created.
func (o *TraceOptions) preflight(ctx context.Context, plans []plan) error {
	checked := map[string]bool{}
	for _, p := range plans {
		if p.ephemeral != nil {
			t := p.targets[0]
			if !checked[t.Namespace] {
				checked[t.Namespace] = true
				if err := checkAccessHint(ctx, o.client, t.Namespace, ephemeralAccess, "or use the default node mode, whose helper can run in another namespace"); err != nil {
					return err
				}
			}
			if err := checkEphemeralSecurity(ctx, o.client, t.Namespace, t.Pod, *p.ephemeral); err != nil {
				return err
			}
			continue
		}
		if checked[p.pod.Namespace] {
			continue
		}
		checked[p.pod.Namespace] = true
		if err := preflight(ctx, o.client, p.pod); err != nil {
			return err
		}
	}
	return nil
}
