package plugin

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/resource"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/kubectl/pkg/polymorphichelpers"
)

// podSource is one set of pods a trace follows: a pod by name, which is
// traced as long as it lives, or a selector (from -l or a workload), whose
// matching pods join and leave while the trace runs.
type podSource struct {
	// what is how the user named it, for messages: "deploy/web", "-l app=a".
	what      string
	namespace string // "" for every namespace
	name      string // a pod by name
	selector  labels.Selector
}

func (s podSource) live() bool { return s.selector != nil }

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
func resolveSources(getter genericclioptions.RESTClientGetter, q targetQuery) ([]podSource, error) {
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
		return []podSource{{what: "-l " + q.Selector, namespace: ns, selector: sel}}, nil
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
	var out []podSource
	for _, info := range infos {
		what := strings.ToLower(info.Mapping.GroupVersionKind.Kind) + "/" + info.Name
		switch obj := info.Object.(type) {
		case *corev1.Pod:
			out = append(out, podSource{what: "pod/" + obj.Name, namespace: obj.Namespace, name: obj.Name})
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
			out = append(out, podSource{what: what, namespace: ns, selector: sel})
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

// nodeTargets returns the whole-node targets of names.
func nodeTargets(names []string) []wire.Target {
	out := make([]wire.Target, 0, len(names))
	for _, n := range names {
		out = append(out, wire.Target{Kind: wire.TargetNode, Node: n})
	}
	return out
}

// listPods returns the pods of a source now.
func (s podSource) listPods(ctx context.Context, client kubernetes.Interface) ([]corev1.Pod, error) {
	if !s.live() {
		pod, err := client.CoreV1().Pods(s.namespace).Get(ctx, s.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("pod %q not found in namespace %q: list the pods with 'kubectl get pods -n %s'", s.name, s.namespace, s.namespace)
		}
		if err != nil {
			return nil, fmt.Errorf("getting pod %s/%s: %w", s.namespace, s.name, err)
		}
		return []corev1.Pod{*pod}, nil
	}
	list, err := client.CoreV1().Pods(s.namespace).List(ctx, metav1.ListOptions{LabelSelector: s.selector.String()})
	if err != nil {
		return nil, fmt.Errorf("listing the pods of %s: %w", s.what, err)
	}
	return list.Items, nil
}

// initialTargets resolves every source to the containers to trace now. A
// pod named by the user must be traceable; pods found by a selector that
// are not running yet are skipped (they join when they run).
func initialTargets(ctx context.Context, client kubernetes.Interface, sources []podSource, container string, note func(string, ...any)) ([]wire.Target, error) {
	seen := map[string]bool{}
	var out []wire.Target
	for _, s := range sources {
		pods, err := s.listPods(ctx, client)
		if err != nil {
			return nil, err
		}
		found := 0
		for i := range pods {
			pod := &pods[i]
			if seen[string(pod.UID)] {
				continue
			}
			t, defaulted, err := targetFromPod(pod, container)
			if err != nil {
				if !s.live() {
					return nil, err
				}
				note("skipping %s/%s for now: %v", pod.Namespace, pod.Name, err)
				continue
			}
			if defaulted != "" && !s.live() {
				note("%s", defaulted)
			}
			seen[string(pod.UID)] = true
			found++
			out = append(out, t)
		}
		if s.live() && found == 0 {
			where := "namespace " + s.namespace
			if s.namespace == "" {
				where = "any namespace"
			}
			return nil, fmt.Errorf("no running pod of %s in %s: check the selector with 'kubectl get pods -l %s'", s.what, where, s.selector)
		}
	}
	return out, nil
}

// byNode groups targets by the node they run on, in a stable order.
func byNode(targets []wire.Target) (nodes []string, groups map[string][]wire.Target) {
	groups = map[string][]wire.Target{}
	for _, t := range targets {
		if _, ok := groups[t.Node]; !ok {
			nodes = append(nodes, t.Node)
		}
		groups[t.Node] = append(groups[t.Node], t)
	}
	sort.Strings(nodes)
	return nodes, groups
}
