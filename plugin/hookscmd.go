package plugin

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// NewCmdHooks lists the hook catalogue, or describes one hook.
func NewCmdHooks(streams genericiooptions.IOStreams, color *string) *cobra.Command {
	return &cobra.Command{
		Use:   "hooks [NAME]",
		Short: "List the hooks, or describe one",
		Example: `  # List every hook
  kubectl trace hooks

  # Show what the sched hook records and what it needs
  kubectl trace hooks sched`,
		Args: cobra.MaximumNArgs(1),
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return hooks.Names(), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				d, ok := hooks.Lookup(args[0])
				if !ok {
					return fmt.Errorf("unknown hook %q: choose one of %s", args[0], strings.Join(hooks.Names(), ", "))
				}
				return describeHook(streams, d)
			}
			if err := validColor(*color); err != nil {
				return err
			}
			_, err := fmt.Fprint(streams.Out, renderHooks(newStyles(streams.Out, *color), hooks.Catalogue()))
			return err
		},
	}
}

func describeHook(streams genericiooptions.IOStreams, d hooks.Descriptor) error {
	w := tabwriter.NewWriter(streams.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "Name:\t%s\n", d.Name)
	fmt.Fprintf(w, "Kind:\t%s\n", d.Kind)
	fmt.Fprintf(w, "Summary:\t%s\n", d.Summary)
	fmt.Fprintf(w, "Outputs:\t%s\n", strings.Join(d.Outputs, ", "))
	if len(d.Events) > 0 {
		fmt.Fprintf(w, "Kernel events:\t%s\n", strings.Join(d.Events, ", "))
	}
	if len(d.Params) == 0 {
		fmt.Fprintf(w, "Parameters:\tnone\n")
	} else {
		fmt.Fprintf(w, "Parameters:\t(--arg key=value)\n")
		for _, p := range d.Params {
			def := ""
			if p.Default != "" {
				def = " (default " + p.Default + ")"
			}
			fmt.Fprintf(w, "  %s\t%s%s\n", p.Name, p.Help, def)
		}
	}
	if len(d.Fields) > 0 {
		fmt.Fprintf(w, "JSON fields:\t\n")
		for _, f := range d.Fields {
			fmt.Fprintf(w, "  %s\t%s\n", f.Name, f.Help)
		}
	}
	if d.NotNodeWide == "" {
		fmt.Fprintf(w, "Whole node:\tyes (node/NAME traces every task of the node)\n")
	} else {
		fmt.Fprintf(w, "Whole node:\tno: %s\n", d.NotNodeWide)
	}
	fmt.Fprintf(w, "Needs:\t\n")
	fmt.Fprintf(w, "  capabilities:\t%s\n", strings.Join(d.Needs.Capabilities, ", "))
	fmt.Fprintf(w, "  host PID namespace:\t%t\n", d.Needs.HostPID)
	fmt.Fprintf(w, "  kernel:\t%s\n", strings.Join(d.Needs.Kernel, ", "))
	return w.Flush()
}

// renderHooks is the catalogue as a table.
func renderHooks(s styles, list []hooks.Descriptor) string {
	var rows [][]string
	for _, d := range list {
		rows = append(rows, []string{s.name.Render(d.Name), d.Kind, strings.Join(d.Outputs, ","), d.Summary})
	}
	return s.table([]string{"NAME", "KIND", "OUTPUT", "SUMMARY"}, rows)
}
