package session

import (
	"bufio"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// oneShotHelper plays a tracer that finds its target, writes its lines
// (deflated when compress) and ends on its own with statistics; the pods'
// get reactor plays the kubelet.
type oneShotHelper struct {
	client   *fake.Clientset
	compress bool
	lines    []string

	mu     sync.Mutex
	exited bool
}

func (f *oneShotHelper) Attach(_ context.Context, _, _, _ string, stdin io.Reader, stdout, stderr io.Writer) error {
	if _, err := bufio.NewReader(stdin).ReadByte(); err != nil {
		return err
	}
	target := wire.Target{Node: "n1", Namespace: "ns", Pod: "web", PodUID: "uid-web", Container: "app", ContainerID: testCID}
	_ = wire.WriteStatus(stderr, wire.Status{Kind: wire.StatusResolved, Target: &target, PIDs: []int{7, 8}, Method: "cgroup"})
	_ = wire.WriteStatus(stderr, wire.Status{Kind: wire.StatusStarted})
	out := stdout
	var z *deflatingWriter
	if f.compress {
		z = newDeflating(stdout)
		out = z
	}
	for _, l := range f.lines {
		_, _ = io.WriteString(out, l)
	}
	if z != nil {
		_ = z.Close()
	}
	_ = wire.WriteStatus(stderr, wire.Status{Kind: wire.StatusStats, Events: uint64(len(f.lines)), Lost: 1, Seconds: 0.5, Ended: "target gone"})
	f.mu.Lock()
	f.exited = true
	f.mu.Unlock()
	return nil
}

func (f *oneShotHelper) reactor(action k8stesting.Action) (bool, runtime.Object, error) {
	get := action.(k8stesting.GetAction)
	if !strings.HasPrefix(get.GetName(), HelperNamePrefix) {
		return false, nil, nil
	}
	obj, err := f.client.Tracker().Get(corev1.SchemeGroupVersion.WithResource("pods"), get.GetNamespace(), get.GetName())
	if err != nil {
		return true, nil, err
	}
	pod := obj.(*corev1.Pod).DeepCopy()
	f.mu.Lock()
	defer f.mu.Unlock()
	state := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	if f.exited {
		state = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}
	}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: HelperContainerName, State: state}}
	return true, pod, nil
}

// testSession is a session on a fake cluster with one pod, web, on n1.
func testSession(t *testing.T, helper *oneShotHelper, format string, outputs ...Output) (*Session, *notes) {
	t.Helper()
	client := fake.NewClientset(runningPod("web", "app"), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}})
	helper.client = client
	client.PrependReactor("get", "pods", helper.reactor)
	noPodWatch(client)
	client.PrependReactor("create", "selfsubjectaccessreviews", allowAll)
	sched, _ := hooks.Lookup("sched")
	var n notes
	s, err := New(Config{ID: "s1", Client: client, Attacher: helper, Sources: []Source{{What: "pod/web", Namespace: "ns", Name: "web"}},
		Hook: sched, Format: format, Mode: NodeMode{}, Image: "img", StartTimeout: 10 * time.Second, StopTimeout: 5 * time.Second,
		Outputs: outputs, Reporter: &n})
	if err != nil {
		t.Fatal(err)
	}
	return s, &n
}

// TestRunReportsAndSummarizes runs the engine on its own, as a session in
// the cluster would: what it found and did goes to the Reporter, the data
// to every output (decoded for an EventWriter), and how it went to the
// Summary.
func TestRunReportsAndSummarizes(t *testing.T) {
	lines := []string{
		`{"time":1.5,"cpu":0,"pid":7,"comm":"sh","event":"sched_switch","node":"n1","namespace":"ns","pod":"web","container":"app"}` + "\n",
		`{"time":1.6,"cpu":1,"pid":8,"comm":"ls","event":"sched_wakeup","node":"n1","namespace":"ns","pod":"web","container":"app"}` + "\n",
	}
	plain, decoded := newRecording(false), newRecording(true)
	s, n := testSession(t, &oneShotHelper{compress: true, lines: lines}, hooks.OutputJSON, plain, decoded)
	sum, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	web := wire.Target{Node: "n1", Namespace: "ns", Pod: "web", PodUID: "uid-web", Container: "app", ContainerID: testCID}
	want := Summary{Ended: EndedHelper,
		Targets: []TargetResult{{Target: web, Events: 2, Lost: 1, Duration: 500 * time.Millisecond, Ended: "target gone"}},
		Helpers: []HelperResult{{Node: "n1", Name: "kubectl-trace-s1", Targets: 1, Reported: true, Events: 2, Lost: 1, Duration: 500 * time.Millisecond}},
	}
	if diff := cmp.Diff(want, sum); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(strings.Join(lines, ""), strings.Join(plain.got["ns/web/app"], "")); diff != "" {
		t.Errorf("plain output (-want +got):\n%s", diff)
	}
	if got := decoded.events["ns/web/app"]; len(got) != 2 || got[0].Event != "sched_switch" || got[1].PID != 8 {
		t.Errorf("decoded events = %+v, want the two events", got)
	}
	if diff := cmp.Diff([]TargetChange{{Target: web, State: TargetFound, Processes: 2, Method: "cgroup"}}, n.targets); diff != "" {
		t.Errorf("target changes (-want +got):\n%s", diff)
	}
	var states []HelperState
	for _, h := range n.helpers {
		states = append(states, h.State)
	}
	if diff := cmp.Diff([]HelperState{HelperAttached, HelperEnded}, states); diff != "" {
		t.Errorf("helper changes (-want +got):\n%s", diff)
	}
}

// The stream inflates exactly when its request asked the helper to
// compress: the request is the one fact of it, not the pod's environment.
func TestStreamInflatesWhenAsked(t *testing.T) {
	for _, compress := range []bool{false, true} {
		out := newRecording(false)
		s, _ := testSession(t, &oneShotHelper{compress: compress, lines: []string{"1.0 a\n", "2.0 b\n"}}, hooks.OutputText, out)
		_, plans, err := s.prepare(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		pl := plans[0]
		pl.Request.Compress = compress
		if err := newStream(s, pl).run(context.Background(), make(chan struct{})); err != nil {
			t.Fatalf("compress %v: %v", compress, err)
		}
		if got := strings.Join(out.got["ns/web/app"], ""); got != "1.0 a\n2.0 b\n" {
			t.Errorf("compress %v: the output got %q, want the two lines", compress, got)
		}
	}
}

// A stop before any helper started starts none.
func TestRunStoppedBeforeStart(t *testing.T) {
	helper := &oneShotHelper{}
	s, _ := testSession(t, helper, hooks.OutputText, newRecording(false))
	s.Interrupt()
	_, err := s.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "interrupted before any helper started") {
		t.Fatalf("Run error = %v, want that nothing started", err)
	}
	for _, a := range helper.client.Actions() {
		if a.GetVerb() == "create" && a.GetResource().Resource == "pods" {
			t.Error("a helper pod was created after the stop")
		}
	}
}
