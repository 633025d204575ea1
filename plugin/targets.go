package plugin

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ktrace-dev/kubectl-trace/plugin/session"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/resource"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/kubectl/pkg/polymorphichelpers"
)

// targetQuery is what the user typed.
type targetQuery struct {
	Args          []string
	Selector      string
	Namespace     string
	AllNamespaces bool
}

// resolveSources turns the query into pod sources, through cli-runtime's
// resource builder so that every kubectl alias (deploy, sts, ds, rs, job,
// svc, …) and the user's kubeconfig namespace work as in kubectl.
func resolveSources(getter genericclioptions.RESTClientGetter, q targetQuery) ([]session.Source, error) {
	if len(q.Args) == 0 {
		if q.Selector == "" {
			return nil, errors.New("name a target, such as pod/NAME, deploy/NAME or -l app=web")
		}
		sel, err := labels.Parse(q.Selector)
		if err != nil {
			return nil, fmt.Errorf("-l %q is not a label selector: write it like -l app=web,tier!=db: %w", q.Selector, err)
		}
		ns := q.Namespace
		if q.AllNamespaces {
			ns = ""
		}
		return []session.Source{{What: "-l " + q.Selector, Namespace: ns, Selector: sel}}, nil
	}
	if q.Selector != "" {
		return nil, errors.New("give either a target or -l, not both")
	}
	for _, a := range q.Args {
		if _, _, ok := strings.Cut(a, "/"); !ok {
			return nil, fmt.Errorf("target %q has no kind: write pod/%s, deploy/%s, … (see 'kubectl trace --help')", a, a, a)
		}
		if _, isNode := nodeArg(a); isNode {
			return nil, fmt.Errorf("%s: a node is traced whole, not as pods: name only nodes, such as node/NAME", a)
		}
	}
	infos, err := resource.NewBuilder(getter).
		WithScheme(scheme.Scheme, scheme.Scheme.PrioritizedVersionsAllGroups()...).
		NamespaceParam(q.Namespace).DefaultNamespace().
		ResourceTypeOrNameArgs(false, q.Args...).
		Flatten().
		Do().Infos()
	if err != nil {
		var status apierrors.APIStatus
		if apierrors.IsNotFound(err) && errors.As(err, &status) && status.Status().Details != nil {
			d := status.Status().Details
			if d.Kind == "namespaces" {
				return nil, fmt.Errorf("namespace %q not found: list them with 'kubectl get namespaces'", d.Name)
			}
			return nil, fmt.Errorf("%s %q not found in namespace %q: list them with 'kubectl get %s -n %s'",
				strings.TrimSuffix(d.Kind, "s"), d.Name, q.Namespace, d.Kind, q.Namespace)
		}
		return nil, fmt.Errorf("resolving %s: %w", strings.Join(q.Args, " "), err)
	}
	var out []session.Source
	for _, info := range infos {
		what := strings.ToLower(info.Mapping.GroupVersionKind.Kind) + "/" + info.Name
		switch obj := info.Object.(type) {
		case *corev1.Pod:
			out = append(out, session.Source{What: "pod/" + obj.Name, Namespace: obj.Namespace, Name: obj.Name})
		case *corev1.Node:
			// Reached only through a kind the builder maps to nodes that
			// nodeArg does not know: say how to ask for it.
			return nil, fmt.Errorf("%s: trace a whole node as node/%s", what, obj.Name)
		default:
			ns, sel, err := polymorphichelpers.SelectorsForObject(info.Object)
			if err != nil {
				return nil, fmt.Errorf("%s cannot be traced: name a pod, or a workload whose pods to trace (deploy, sts, ds, rs, job, svc), or use -l", what)
			}
			if sel.Empty() {
				return nil, fmt.Errorf("%s has an empty selector, which would trace every pod: name the pods with -l", what)
			}
			out = append(out, session.Source{What: what, Namespace: ns, Selector: sel})
		}
	}
	return out, nil
}

// nodeArg returns the node's name when arg is node/NAME (or nodes/NAME,
// no/NAME, as kubectl spells it); name is "" for "node/".
func nodeArg(arg string) (name string, ok bool) {
	kind, name, found := strings.Cut(arg, "/")
	if !found {
		return "", false
	}
	switch strings.ToLower(kind) {
	case "node", "nodes", "no":
		return name, true
	}
	return "", false
}

// resolveNodes returns the nodes of a query that names whole nodes
// (node/a node/b), each once, in order; none when it names no node. Nodes
// and pods do not mix: a whole node already holds its pods, and a pod's
// events are attributed to it only when traced as a pod.
func resolveNodes(q targetQuery) ([]string, error) {
	var nodes, others []string
	seen := map[string]bool{}
	for _, a := range q.Args {
		name, ok := nodeArg(a)
		if !ok {
			others = append(others, a)
			continue
		}
		if name == "" || strings.Contains(name, "/") {
			return nil, fmt.Errorf("target %q: name one node, as node/NAME (list them with 'kubectl get nodes')", a)
		}
		if !seen[name] {
			seen[name] = true
			nodes = append(nodes, name)
		}
	}
	if len(nodes) == 0 {
		return nil, nil
	}
	if len(others) > 0 || q.Selector != "" {
		what := strings.Join(others, " ")
		if q.Selector != "" {
			what = strings.TrimSpace(what + " -l " + q.Selector)
		}
		return nil, fmt.Errorf("node/%s and %s: trace whole nodes or pods, not both in one command: a whole node already holds every pod on it (run two commands to trace both ways)", nodes[0], what)
	}
	return nodes, nil
}

// parseTargetArg splits "pod/web", "pods/web" or "web" into kind and name.
func parseTargetArg(arg string) (kind, name string, err error) {
	kind, name, found := strings.Cut(arg, "/")
	if !found {
		kind, name = "pod", arg
	}
	switch strings.ToLower(kind) {
	case "pod", "pods", "po":
		kind = "pod"
	default:
		return "", "", fmt.Errorf("target %q: only pods can be traced in this release: use pod/NAME", arg)
	}
	if name == "" {
		return "", "", fmt.Errorf("target %q has no name: use pod/NAME", arg)
	}
	return kind, name, nil
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
