package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"github.com/ktrace-dev/kubectl-trace/plugin/session"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
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
	// Color is the root command's --color.
	Color *string

	// Derived by Complete.
	getter  genericclioptions.RESTClientGetter
	query   targetQuery
	command []string
	// newSessionID is a field so tests can fix the helpers' names.
	newSessionID func() string
}

// NewExecOptions returns the defaults; color is the root's --color.
func NewExecOptions(streams genericiooptions.IOStreams, color *string) *ExecOptions {
	return &ExecOptions{IOStreams: streams, Namespaces: "net", Image: DefaultImage(), StartTimeout: 2 * time.Minute,
		Color: color, newSessionID: func() string { return rand.String(5) }}
}

// NewCmdExec builds `kubectl trace exec`.
func NewCmdExec(getter genericclioptions.RESTClientGetter, streams genericiooptions.IOStreams, color *string) *cobra.Command {
	o := NewExecOptions(streams, color)
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
			if err := o.Validate(); err != nil {
				return err
			}
			cmd.SilenceUsage = true
			return o.Run(cmd.Context())
		},
	}
	o.AddFlags(cmd)
	_ = cmd.RegisterFlagCompletionFunc("container", completeContainers(getter))
	return cmd
}

// AddFlags binds the options to flags, with their current values as defaults.
func (o *ExecOptions) AddFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&o.Container, "container", "c", o.Container, "container whose namespaces to enter; defaults to the pod's default container")
	f.StringVarP(&o.Selector, "selector", "l", o.Selector, "run in every pod matching this label selector")
	f.StringVar(&o.Namespaces, "ns", o.Namespaces, "namespaces to enter, comma separated: "+strings.Join(wire.ExecNamespaces, ", ")+" (mnt runs the target's own binaries, not the image's)")
	f.BoolVarP(&o.Stdin, "stdin", "i", o.Stdin, "pass stdin to the command (one target only)")
	f.StringVar(&o.Image, "image", o.Image, "tracer image the helper runs")
	f.StringVar(&o.HelperNamespace, "helper-namespace", o.HelperNamespace, "namespace of the helper pods; defaults to the target's namespace")
	f.DurationVar(&o.StartTimeout, "start-timeout", o.StartTimeout, "how long to wait for the helper to start")
	f.BoolVar(&o.Privileged, "privileged", o.Privileged, "run the helper as a privileged container instead of with SYS_ADMIN, SYS_PTRACE, NET_ADMIN and NET_RAW")
	_ = cmd.RegisterFlagCompletionFunc("ns", cobra.FixedCompletions(wire.ExecNamespaces, cobra.ShellCompDirectiveNoFileComp|cobra.ShellCompDirectiveNoSpace))
}

// Complete takes the targets and the command, and the namespace from the
// kubeconfig, without a request to the cluster.
func (o *ExecOptions) Complete(getter genericclioptions.RESTClientGetter, targets, command []string) error {
	ns, _, err := getter.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return fmt.Errorf("reading the namespace from kubeconfig: %w", err)
	}
	targets = slices.Clone(targets)
	for i, a := range targets {
		if !strings.Contains(a, "/") {
			targets[i] = "pod/" + a
		}
	}
	o.getter, o.command = getter, command
	o.query = targetQuery{Args: targets, Selector: o.Selector, Namespace: ns}
	return nil
}

// Validate checks the options, reading nothing but their fields.
func (o *ExecOptions) Validate() error {
	if len(o.command) == 0 {
		return errors.New("give the command after --, such as: kubectl trace exec pod/web -- ip -o addr")
	}
	for _, n := range strings.Split(o.Namespaces, ",") {
		if !slices.Contains(wire.ExecNamespaces, n) {
			return fmt.Errorf("--ns %q: %q is not a namespace: choose from %s", o.Namespaces, n, strings.Join(wire.ExecNamespaces, ", "))
		}
	}
	if o.StartTimeout <= 0 {
		return fmt.Errorf("--start-timeout %s must be positive", o.StartTimeout)
	}
	if o.Image == "" {
		return errors.New("--image is empty: name the tracer image")
	}
	return nil
}

// Run starts one helper per node, runs the command in every target and
// returns the exit code (ExitCodeError) of a single target, or an error
// naming the targets whose command failed.
func (o *ExecOptions) Run(ctx context.Context) error {
	c, err := connect(o.getter)
	if err != nil {
		return err
	}
	if c.sources, err = resolveSources(o.getter, o.query); err != nil {
		return err
	}
	return o.exec(ctx, c)
}

// exec runs the command through the engine and turns its results into
// the command's exit.
func (o *ExecOptions) exec(ctx context.Context, c cluster) error {
	streams, ok := c.attacher.(interface {
		session.Attacher
		session.Execer
	})
	if !ok {
		return errors.New("kubectl trace exec needs a streamer that can exec")
	}
	var stdin io.Reader
	if o.Stdin {
		stdin = o.In
	}
	// Quiet like kubectl exec: the tool's own output is what matters;
	// warnings and errors still show.
	results, err := session.Exec(ctx, session.ExecConfig{
		ID: o.newSessionID(), Client: c.client, Streams: streams, Sources: c.sources, Container: o.Container,
		Namespaces: o.Namespaces, Command: o.command, Stdin: stdin, Stdout: o.Out, Stderr: o.ErrOut,
		Image: o.Image, HelperNamespace: o.HelperNamespace, Privileged: o.Privileged, StartTimeout: o.StartTimeout,
		Reporter: traceReport{ui: newUI(o.ErrOut, *o.Color, true)},
	})
	if err != nil {
		return err
	}
	if len(results) == 1 {
		r := results[0]
		if r.Err != nil {
			return r.Err
		}
		if r.Code != 0 {
			return ExitCodeError{Code: r.Code}
		}
		return nil
	}
	var errs []error
	for _, r := range results {
		switch {
		case r.Err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", r.Target, r.Err))
		case r.Code != 0:
			errs = append(errs, fmt.Errorf("%s: command exited with code %d", r.Target, r.Code))
		}
	}
	return errors.Join(errs...)
}
