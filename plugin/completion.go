package plugin

import (
	"context"
	"strings"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
)

// completePods offers the running pods of the namespace as pod/NAME, and
// the nodes as node/NAME once the word starts with node/ (or after a first
// node/NAME: more nodes fan out).
func completePods(getter genericclioptions.RESTClientGetter) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		_, nodeWord := nodeArg(toComplete)
		afterNode := false
		if len(args) > 0 {
			_, afterNode = nodeArg(args[0])
		}
		if len(args) > 0 && !afterNode {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		c, err := connect(getter)
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		client := c.client
		if nodeWord || afterNode {
			return completeNodes(cmd.Context(), client, args, toComplete)
		}
		ns, _, err := getter.ToRawKubeConfigLoader().Namespace()
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		list, err := client.CoreV1().Pods(ns).List(cmd.Context(), metav1.ListOptions{FieldSelector: "status.phase=Running"})
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		var out []string
		for _, p := range list.Items {
			if c := "pod/" + p.Name; strings.HasPrefix(c, toComplete) || strings.HasPrefix(p.Name, toComplete) {
				out = append(out, c)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeNodes offers the cluster's nodes as node/NAME, leaving out those
// already named.
func completeNodes(ctx context.Context, client kubernetes.Interface, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	list, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	named := map[string]bool{}
	for _, a := range args {
		if n, ok := nodeArg(a); ok {
			named[n] = true
		}
	}
	kind, name, _ := strings.Cut(toComplete, "/")
	if _, ok := nodeArg(toComplete); !ok {
		kind, name = "node", toComplete
	}
	var out []string
	for _, n := range list.Items {
		if !named[n.Name] && strings.HasPrefix(n.Name, name) {
			out = append(out, kind+"/"+n.Name)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeContainers offers the containers of the pod named by the target.
func completeContainers(getter genericclioptions.RESTClientGetter) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) == 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		_, name, err := parseTargetArg(args[0])
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		c, err := connect(getter)
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		client := c.client
		ns, _, err := getter.ToRawKubeConfigLoader().Namespace()
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		pod, err := client.CoreV1().Pods(ns).Get(cmd.Context(), name, metav1.GetOptions{})
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		var out []string
		for _, c := range pod.Spec.Containers {
			if strings.HasPrefix(c.Name, toComplete) {
				out = append(out, c.Name)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeArgs offers the chosen hook's parameters as key=.
func completeArgs(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	name, _ := cmd.Flags().GetString("hook")
	d, ok := hooks.Lookup(name)
	if !ok {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, p := range d.Params {
		if strings.HasPrefix(p.Name+"=", toComplete) {
			out = append(out, p.Name+"=\t"+p.Help)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}

// completeNamespaces offers the cluster's namespaces for -n.
func completeNamespaces(getter genericclioptions.RESTClientGetter) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		c, err := connect(getter)
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		client := c.client
		list, err := client.CoreV1().Namespaces().List(cmd.Context(), metav1.ListOptions{})
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		var out []string
		for _, n := range list.Items {
			if strings.HasPrefix(n.Name, toComplete) {
				out = append(out, n.Name)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
