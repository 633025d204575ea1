package plugin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"github.com/ktrace-dev/kubectl-trace/plugin/session"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// fakeHelper plays the tracer's side of the protocol over a recorded attach,
// and the kubelet's by reporting the helper container's state.
type fakeHelper struct {
	mu         sync.Mutex
	exitCode   *int32
	gotGo      bool
	attachedTo string
	// script runs after the go byte; it writes the helper's output.
	script func(stdout, stderr io.Writer)
	// failBefore makes the tracer exit before any data.
	failBefore string
}

func (f *fakeHelper) Attach(ctx context.Context, ns, pod, container string, stdin io.Reader, stdout, stderr io.Writer) error {
	f.mu.Lock()
	f.attachedTo = ns + "/" + pod + "/" + container
	f.mu.Unlock()
	if f.failBefore != "" {
		_ = wire.WriteStatus(stderr, wire.Status{Kind: wire.StatusError, Message: f.failBefore})
		f.exit(1)
		return nil
	}
	in := bufio.NewReader(stdin)
	if _, err := in.ReadByte(); err != nil {
		f.exit(0)
		return nil
	}
	f.mu.Lock()
	f.gotGo = true
	f.mu.Unlock()
	_ = wire.WriteStatus(stderr, wire.Status{Kind: wire.StatusStarted})
	// The plugin asks every helper for compressed stdout.
	z := newDeflating(stdout)
	f.script(z, stderr)
	// Stream until the plugin's stop message (or the end of stdin).
	for {
		line, err := in.ReadBytes('\n')
		if err != nil {
			break
		}
		if c, err := wire.DecodeControl(line); err == nil && c.Stop {
			break
		}
	}
	_ = z.Close()
	_ = wire.WriteStatus(stderr, wire.Status{Kind: wire.StatusStats, Events: 2, Seconds: 0.1})
	f.exit(0)
	return ctx.Err()
}

func (f *fakeHelper) exit(code int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.exitCode = &code
}

// reactor reports the helper pod as running until the fake tracer exits.
func (f *fakeHelper) reactor(client *fake.Clientset) k8stesting.ReactionFunc {
	return func(action k8stesting.Action) (bool, runtime.Object, error) {
		get := action.(k8stesting.GetAction)
		if !strings.HasPrefix(get.GetName(), session.HelperNamePrefix) {
			return false, nil, nil
		}
		obj, err := client.Tracker().Get(corev1.SchemeGroupVersion.WithResource("pods"), get.GetNamespace(), get.GetName())
		if err != nil {
			return true, nil, err
		}
		pod := obj.(*corev1.Pod).DeepCopy()
		f.mu.Lock()
		defer f.mu.Unlock()
		state := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
		if f.exitCode != nil {
			state = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: *f.exitCode}}
		}
		pod.Status.Phase = corev1.PodRunning
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: session.HelperContainerName, State: state}}
		return true, pod, nil
	}
}

// testTrace is the trace command with its cluster faked: Run traces with
// the fake client and helper, as TraceOptions.Run does once it has read
// the real ones.
type testTrace struct {
	*TraceOptions
	cluster cluster
}

func (o testTrace) Run(ctx context.Context) error { return o.trace(ctx, o.cluster) }

func newTestOptions(t *testing.T, helper *fakeHelper, objs ...runtime.Object) (testTrace, *fake.Clientset, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns"}}
	objs = append(objs, ns)
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{corev1.LabelOSStable: "linux"}}}
	client := fake.NewClientset(append(objs, node)...)
	client.PrependReactor("get", "pods", helper.reactor(client))
	noPodWatch(client)
	client.PrependReactor("create", "selfsubjectaccessreviews", allowAll)
	var out, errOut bytes.Buffer
	o := NewTraceOptions(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	o.Hook = "sched"
	c := cluster{client: client, attacher: helper, sources: []session.Source{{What: "pod/web", Namespace: "ns", Name: "web"}}}
	o.newSessionID = func() string { return "s1" }
	o.signals = make(chan os.Signal)
	o.StopTimeout = 5 * time.Second
	return testTrace{o, c}, client, &out, &errOut
}

func helperPods(t *testing.T, client *fake.Clientset) int {
	t.Helper()
	list, err := client.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{LabelSelector: session.HelperSelector()})
	if err != nil {
		t.Fatal(err)
	}
	return len(list.Items)
}

func TestRunStreamsUntilDurationAndCleansUp(t *testing.T) {
	helper := &fakeHelper{script: func(stdout, stderr io.Writer) {
		fmt.Fprintln(stdout, "1.000000 [000] ktalpha-10 sched_process_exec: filename=/x")
		fmt.Fprintln(stderr, "a plain line from a tool")
	}}
	o, client, out, errOut := newTestOptions(t, helper, runningPod("web", "app"))
	o.Duration = 50 * time.Millisecond
	if err := o.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v\nstderr:\n%s", err, errOut)
	}
	if got, want := out.String(), "1.000000 [000] ktalpha-10 sched_process_exec: filename=/x\n"; got != want {
		t.Errorf("stdout = %q, want only the trace data %q", got, want)
	}
	for _, want := range []string{"a plain line from a tool", "ns/web/app   sched   2        0", "duration reached", "tracing with hook sched"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut.String(), `{"ktrace"`) {
		t.Errorf("raw status lines leaked to stderr:\n%s", errOut)
	}
	if !helper.gotGo {
		t.Error("the helper never received the go byte")
	}
	if helper.attachedTo != "ns/kubectl-trace-s1/tracer" {
		t.Errorf("attached to %q", helper.attachedTo)
	}
	if n := helperPods(t, client); n != 0 {
		t.Errorf("%d helper pods left", n)
	}
}

func TestRunStopsOnSignal(t *testing.T) {
	helper := &fakeHelper{script: func(io.Writer, io.Writer) {}}
	o, client, _, errOut := newTestOptions(t, helper, runningPod("web", "app"))
	sigs := make(chan os.Signal, 1)
	o.signals = sigs
	go func() {
		time.Sleep(100 * time.Millisecond)
		sigs <- os.Interrupt
	}()
	start := time.Now()
	if err := o.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v\nstderr:\n%s", err, errOut)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("stopping took %s", d)
	}
	if n := helperPods(t, client); n != 0 {
		t.Errorf("%d helper pods left", n)
	}
}

func TestRunReportsHelperFailure(t *testing.T) {
	helper := &fakeHelper{failBefore: "tracefs is not available on this node"}
	o, client, out, _ := newTestOptions(t, helper, runningPod("web", "app"))
	err := o.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "tracefs is not available on this node") {
		t.Fatalf("Run error = %v, want the helper's message", err)
	}
	if out.Len() != 0 {
		t.Errorf("stdout got %q on failure", out)
	}
	if n := helperPods(t, client); n != 0 {
		t.Errorf("%d helper pods left after a failure", n)
	}
}

func TestRunRefusesBadTargetsWithoutCreating(t *testing.T) {
	pending := runningPod("web", "app")
	pending.Status.Phase = corev1.PodPending
	tests := []struct {
		name      string
		objs      []runtime.Object
		container string
		wantErr   string
	}{
		{name: "missing pod", wantErr: `pod "web" not found in namespace "ns"`},
		{name: "missing container", objs: []runtime.Object{runningPod("web", "app")}, container: "db", wantErr: `container "db" not found`},
		{name: "pending pod", objs: []runtime.Object{pending}, wantErr: "is Pending"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, client, _, _ := newTestOptions(t, &fakeHelper{}, tt.objs...)
			o.Container = tt.container
			err := o.Run(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Run error = %v, want %q", err, tt.wantErr)
			}
			for _, a := range client.Actions() {
				if a.GetVerb() == "create" {
					t.Errorf("created %s despite the bad input", a.GetResource().Resource)
				}
			}
		})
	}
}

func TestDryRunPrintsSpecOnly(t *testing.T) {
	o, client, out, _ := newTestOptions(t, &fakeHelper{}, runningPod("web", "app"))
	o.DryRun = true
	if err := o.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: Pod", "hostPID: true", "stdinOnce: true", "nodeName: n1", "name: kubectl-trace-s1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry-run output lacks %q:\n%s", want, out)
		}
	}
	for _, a := range client.Actions() {
		if a.GetVerb() == "create" {
			t.Error("dry run created an object")
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*TraceOptions)
		wantErr string
	}{
		{name: "ok", mutate: func(*TraceOptions) {}},
		{name: "no hook", mutate: func(o *TraceOptions) { o.Hook = "" }, wantErr: "--hook is required"},
		{name: "unknown hook", mutate: func(o *TraceOptions) { o.Hook = "bogus" }, wantErr: `unknown hook "bogus"`},
		{name: "bad output", mutate: func(o *TraceOptions) { o.Output = "yaml" }, wantErr: `cannot write -o "yaml"`},
		{name: "negative duration", mutate: func(o *TraceOptions) { o.Duration = -time.Second }, wantErr: "is negative"},
		{name: "no image", mutate: func(o *TraceOptions) { o.Image = "" }, wantErr: "--image is empty"},
		{name: "negative max events", mutate: func(o *TraceOptions) { o.MaxEvents = -1 }, wantErr: "--max-events -1 is negative"},
		{name: "bad max size", mutate: func(o *TraceOptions) { o.MaxSize = "lots" }, wantErr: `--max-size "lots" is not a size`},
		{name: "arg without value", mutate: func(o *TraceOptions) { o.RawArgs = []string{"filter"} }, wantErr: `--arg "filter" is not key=value`},
		{name: "arg twice", mutate: func(o *TraceOptions) { o.RawArgs = []string{"a=1", "a=2"} }, wantErr: "--arg a is given twice"},
		{name: "arg the hook lacks", mutate: func(o *TraceOptions) { o.RawArgs = []string{"a=1"} }, wantErr: `hook "sched" takes no parameters`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewTraceOptions(genericiooptions.IOStreams{})
			o.Hook = "sched"
			tt.mutate(o)
			err := o.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestCommandParsesFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	cmd := NewCmdTrace(genericclioptions.NewConfigFlags(true), genericiooptions.IOStreams{Out: &out, ErrOut: &errOut})
	cmd.SetArgs([]string{"pod/web", "--hook", "nope", "--duration", "5s"})
	cmd.SetOut(&errOut)
	cmd.SetErr(&errOut)
	err := cmd.Execute()
	if err == nil || !errors.Is(err, err) || !strings.Contains(err.Error(), `unknown hook "nope"`) {
		t.Fatalf("Execute error = %v", err)
	}
	cmd = NewCmdTrace(genericclioptions.NewConfigFlags(true), genericiooptions.IOStreams{Out: &out, ErrOut: &errOut})
	cmd.SetArgs([]string{"pod/web", "--hook", "sched", "--duration", "soon"})
	cmd.SetOut(&errOut)
	cmd.SetErr(&errOut)
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), `invalid argument "soon"`) {
		t.Fatalf("Execute error = %v, want a duration parse error", err)
	}
}
