package plugin

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// NewCmdTrace builds the kubectl-trace command tree. getter reads the
// user's kubeconfig; when it has flags of its own (a
// *genericclioptions.ConfigFlags: --namespace, --context, …) they are the
// root's persistent flags.
func NewCmdTrace(getter genericclioptions.RESTClientGetter, streams genericiooptions.IOStreams) *cobra.Command {
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
		ValidArgsFunction: completePods(getter),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && o.Selector == "" {
				if cmd.Flags().NFlag() == 0 {
					return cmd.Help()
				}
				return errors.New("name a target, such as pod/NAME, deploy/NAME, node/NAME or -l app=web (see 'kubectl trace --help')")
			}
			if err := o.Complete(getter, args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w\nSee '%s --help' for usage.", err, c.CommandPath())
	})
	if f, ok := getter.(interface{ AddFlags(*pflag.FlagSet) }); ok {
		f.AddFlags(cmd.PersistentFlags())
	}
	cmd.PersistentFlags().StringVar(&o.Color, "color", o.Color, "colour on stderr and in tables: auto (terminals, unless NO_COLOR is set), always or never")
	_ = cmd.RegisterFlagCompletionFunc("color", cobra.FixedCompletions([]string{ColorAuto, ColorAlways, ColorNever}, cobra.ShellCompDirectiveNoFileComp))
	o.AddFlags(cmd)
	_ = cmd.RegisterFlagCompletionFunc("container", completeContainers(getter))
	_ = cmd.RegisterFlagCompletionFunc("arg", completeArgs)
	_ = cmd.RegisterFlagCompletionFunc("namespace", completeNamespaces(getter))
	cmd.AddCommand(NewCmdHooks(streams, &o.Color), NewCmdVersion(streams), NewCmdCleanup(getter, streams), NewCmdExec(getter, streams, &o.Color))
	return cmd
}
