package plugin

import (
	"errors"
	"fmt"
	"time"

	"github.com/ktrace-dev/kubectl-trace/plugin/session"
	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// CleanupOptions removes helper pods that earlier sessions left behind (a
// plugin killed with SIGKILL, a lost connection).
type CleanupOptions struct {
	genericiooptions.IOStreams
	AllNamespaces bool
	DryRun        bool
}

// NewCmdCleanup builds `kubectl trace cleanup`.
func NewCmdCleanup(getter genericclioptions.RESTClientGetter, streams genericiooptions.IOStreams) *cobra.Command {
	o := &CleanupOptions{IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "cleanup",
		Short: "Delete helper pods that earlier sessions left behind",
		Example: `  # Delete leftover helpers in the current namespace
  kubectl trace cleanup

  # Show the leftovers in every namespace, and delete nothing
  kubectl trace cleanup -A --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SilenceUsage = true
			return o.Run(cmd, getter)
		},
	}
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", o.AllNamespaces, "look in every namespace")
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", o.DryRun, "list what would be deleted, and delete nothing")
	return cmd
}

// Run lists the helpers by label and deletes them.
func (o *CleanupOptions) Run(cmd *cobra.Command, getter genericclioptions.RESTClientGetter) error {
	c, err := connect(getter)
	if err != nil {
		return err
	}
	client := c.client
	ns := ""
	if !o.AllNamespaces {
		if ns, _, err = getter.ToRawKubeConfigLoader().Namespace(); err != nil {
			return fmt.Errorf("reading the namespace from kubeconfig: %w", err)
		}
	}
	ctx := cmd.Context()
	list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: session.HelperSelector()})
	if err != nil {
		return fmt.Errorf("listing helper pods: %w", err)
	}
	if len(list.Items) == 0 {
		fmt.Fprintln(o.ErrOut, "no helper pods found")
		return nil
	}
	var errs []error
	for _, p := range list.Items {
		if o.DryRun {
			fmt.Fprintf(o.Out, "pod/%s in namespace %s would be deleted (%s)\n", p.Name, p.Namespace, p.Status.Phase)
			continue
		}
		if err := session.DeleteHelperPod(client, p.Namespace, p.Name, 60*time.Second, false); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(o.Out, "pod/%s deleted from namespace %s\n", p.Name, p.Namespace)
	}
	return errors.Join(errs...)
}
