package plugin

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"github.com/ktrace-dev/kubectl-trace/plugin/session"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func TestResolveNodes(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		selector string
		want     []string
		wantErr  string
	}{
		{name: "pods only", args: []string{"pod/web", "deploy/api"}},
		{name: "one node", args: []string{"node/n1"}, want: []string{"n1"}},
		{name: "kubectl's spellings, each node once", args: []string{"nodes/n2", "no/n1", "NODE/n2"}, want: []string{"n2", "n1"}},
		{name: "no name", args: []string{"node/"}, wantErr: `target "node/": name one node, as node/NAME`},
		{name: "nodes and pods", args: []string{"node/n1", "pod/web"}, wantErr: "trace whole nodes or pods, not both"},
		{name: "nodes and a selector", args: []string{"node/n1"}, selector: "app=a", wantErr: "node/n1 and -l app=a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveNodes(targetQuery{Args: tt.args, Selector: tt.selector})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("resolveNodes error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("nodes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestNodeCommandRefusals runs the real command: each refusal comes
// before any API request (the kubeconfig points nowhere).
func TestNodeCommandRefusals(t *testing.T) {
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "ephemeral mode", args: []string{"node/n1", "--hook", "sched", "--mode", "ephemeral"}, wantErr: "--mode ephemeral cannot trace a whole node"},
		{name: "a container", args: []string{"node/n1", "--hook", "sched", "-c", "app"}, wantErr: "-c app names a container"},
		{name: "a hook that refuses nodes", args: []string{"node/n1", "--hook", "funcgraph"}, wantErr: `hook "funcgraph" cannot trace a whole node`},
		{name: "mixed with a pod", args: []string{"node/n1", "web", "--hook", "sched"}, wantErr: "not both in one command"},
		{name: "mixed with a selector", args: []string{"node/n1", "-l", "app=a", "--hook", "sched"}, wantErr: "not both in one command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			cmd := NewCmdTrace(genericclioptions.NewConfigFlags(true), genericiooptions.IOStreams{Out: &out, ErrOut: &errOut})
			cmd.SetArgs(tt.args)
			cmd.SetOut(&errOut)
			cmd.SetErr(&errOut)
			err := cmd.Execute()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Execute error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func nodeOptions(t *testing.T, nodes ...string) (testTrace, *fake.Clientset, *framedHelpers, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	client := fake.NewClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}},
	)
	helpers := &framedHelpers{client: client, exited: map[string]bool{}, adds: map[string][]string{}}
	client.PrependReactor("get", "pods", helpers.reactor)
	client.PrependReactor("create", "selfsubjectaccessreviews", allowAll)
	var out, errOut bytes.Buffer
	o := NewTraceOptions(genericiooptions.IOStreams{Out: &out, ErrOut: &errOut})
	o.Hook, o.Color = "sched", ColorNever
	c := cluster{client: client, attacher: helpers}
	o.newSessionID = func() string { return "s1" }
	o.signals = make(chan os.Signal)
	o.nodes, o.namespace = nodes, "ns"
	return testTrace{o, c}, client, helpers, &out, &errOut
}

func createdHelpers(client *fake.Clientset) []*corev1.Pod {
	var pods []*corev1.Pod
	for _, a := range client.Actions() {
		if a.GetVerb() == "create" && a.GetResource().Resource == "pods" {
			pods = append(pods, a.(k8stesting.CreateAction).GetObject().(*corev1.Pod))
		}
	}
	return pods
}

func TestRunNodesOneHelperEach(t *testing.T) {
	o, client, _, out, errOut := nodeOptions(t, "n1", "n2")
	o.Duration = 300 * time.Millisecond
	if err := o.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v\nstderr:\n%s", err, errOut)
	}
	pods := createdHelpers(client)
	if len(pods) != 2 {
		t.Fatalf("created %d helper pods for 2 nodes, want one each", len(pods))
	}
	// The helpers start concurrently: in node order once sorted.
	sort.Slice(pods, func(i, j int) bool { return pods[i].Spec.NodeName < pods[j].Spec.NodeName })
	for i, p := range pods {
		node := []string{"n1", "n2"}[i]
		req, err := wire.DecodeRequest(p.Spec.Containers[0].Env[0].Value)
		if err != nil {
			t.Fatal(err)
		}
		want := []wire.Target{{Kind: wire.TargetNode, Node: node}}
		if diff := cmp.Diff(want, req.Targets); diff != "" {
			t.Errorf("helper %d's targets (-want +got):\n%s", i, diff)
		}
		if p.Spec.NodeName != node || p.Namespace != "ns" || !p.Spec.HostPID || p.Annotations[session.AnnotationTargets] != "node/"+node {
			t.Errorf("helper %d: node %q namespace %q hostPID %v targets %q; want node %q in the kubeconfig's namespace, hostPID",
				i, p.Spec.NodeName, p.Namespace, p.Spec.HostPID, p.Annotations[session.AnnotationTargets], node)
		}
	}
	// The fake helper writes one line per target; merged lines name the node.
	for _, want := range []string{"node/n1 1.000000 [000] -1 sched_switch: x", "node/n2 1.000000 [000] -1 sched_switch: x"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	for _, want := range []string{"2 target(s) on 2 node(s)", "node/n1", "node/n2"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if n := helperPods(t, client); n != 0 {
		t.Errorf("%d helper pods left", n)
	}
}

func TestRunNodeOutputDir(t *testing.T) {
	o, _, _, out, errOut := nodeOptions(t, "n1")
	o.Duration = 200 * time.Millisecond
	o.OutputDir = t.TempDir()
	if err := o.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v\nstderr:\n%s", err, errOut)
	}
	if out.Len() != 0 {
		t.Errorf("stdout got %q with --output-dir", out)
	}
	if want := "wrote " + filepath.Join(o.OutputDir, "node_n1.txt"); !strings.Contains(errOut.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, errOut)
	}
	b, err := os.ReadFile(filepath.Join(o.OutputDir, "node_n1.txt"))
	if err != nil || !strings.Contains(string(b), "sched_switch: x") {
		t.Errorf("node_n1.txt = %q, %v; want the node's trace", b, err)
	}
}

func TestRunNodeRefusedWithoutCreating(t *testing.T) {
	denyNodes := func(action k8stesting.Action) (bool, runtime.Object, error) {
		review := action.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview).DeepCopy()
		review.Status.Allowed = review.Spec.ResourceAttributes.Resource != "nodes"
		return true, review, nil
	}
	tests := []struct {
		name    string
		nodes   []string
		reactor k8stesting.ReactionFunc
		wantErr string
	}{
		{name: "no such node", nodes: []string{"n1", "n9"}, wantErr: `node "n9" not found: list the nodes with 'kubectl get nodes'`},
		{name: "may not read nodes", nodes: []string{"n1"}, reactor: denyNodes, wantErr: "you may not get nodes cluster-wide"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, client, _, _, _ := nodeOptions(t, tt.nodes...)
			if tt.reactor != nil {
				client.PrependReactor("create", "selfsubjectaccessreviews", tt.reactor)
			}
			err := o.Run(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Run error = %v, want %q", err, tt.wantErr)
			}
			if pods := createdHelpers(client); len(pods) != 0 {
				t.Errorf("created %d helper pods despite the refusal", len(pods))
			}
		})
	}
}

func TestNodeDryRun(t *testing.T) {
	o, client, _, out, _ := nodeOptions(t, "n1")
	o.DryRun = true
	o.HelperNamespace = "tracing"
	if err := o.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"nodeName: n1", "namespace: tracing", "hostPID: true", "kubectl-trace.dev/targets: node/n1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry-run output lacks %q:\n%s", want, out)
		}
	}
	if pods := createdHelpers(client); len(pods) != 0 {
		t.Error("dry run created a pod")
	}
}

func TestCompleteNodes(t *testing.T) {
	client := fake.NewClientset(
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "worker-1"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "worker-2"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "control"}},
	)
	tests := []struct {
		name       string
		args       []string
		toComplete string
		want       []string
	}{
		{name: "every node", toComplete: "node/", want: []string{"node/control", "node/worker-1", "node/worker-2"}},
		{name: "by prefix, in the user's spelling", toComplete: "no/w", want: []string{"no/worker-1", "no/worker-2"}},
		{name: "more nodes after a node, not the same twice", args: []string{"node/worker-1"}, toComplete: "", want: []string{"node/control", "node/worker-2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := completeNodes(context.Background(), client, tt.args, tt.toComplete)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("completions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDescribeHookSaysWhetherItTracesANode(t *testing.T) {
	for hook, want := range map[string]string{
		"sched":     "yes (node/NAME",
		"funcgraph": "no: without a PID filter",
	} {
		var out bytes.Buffer
		d, _ := hooks.Lookup(hook)
		if err := describeHook(genericiooptions.IOStreams{Out: &out}, d); err != nil {
			t.Fatal(err)
		}
		line := ""
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(l, "Whole node:") {
				line = strings.TrimSpace(strings.TrimPrefix(l, "Whole node:"))
			}
		}
		if !strings.HasPrefix(line, want) {
			t.Errorf("kubectl trace hooks %s lacks %q:\n%s", hook, want, out.String())
		}
	}
}
