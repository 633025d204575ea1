package plugin

import (
	"bufio"
	"bytes"
	"context"
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
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// framedHelpers fakes every helper of a fan-out: each attach decodes its
// pod's request, writes one framed line per target, answers control
// messages, and ends with statistics when stdin closes.
type framedHelpers struct {
	client *fake.Clientset
	mu     sync.Mutex
	exited map[string]bool
	adds   map[string][]string
}

func (f *framedHelpers) Attach(ctx context.Context, ns, pod, container string, stdin io.Reader, stdout, stderr io.Writer) error {
	obj, err := f.client.Tracker().Get(corev1.SchemeGroupVersion.WithResource("pods"), ns, pod)
	if err != nil {
		return err
	}
	req, err := wire.DecodeRequest(obj.(*corev1.Pod).Spec.Containers[0].Env[0].Value)
	if err != nil {
		return err
	}
	if !req.Framed || !req.Compress {
		return fmt.Errorf("request for %s is not framed and compressed", pod)
	}
	z := newDeflating(stdout)
	in := bufio.NewReader(stdin)
	if _, err := in.ReadByte(); err != nil {
		return err
	}
	_ = wire.WriteStatus(stderr, wire.Status{Kind: wire.StatusStarted})
	targets := req.Targets
	for i, t := range targets {
		_ = wire.WriteFrame(z, i, []byte(fmt.Sprintf("1.000000 [000] %s-1 sched_switch: x\n", t.Pod)))
	}
	for {
		line, err := in.ReadBytes('\n')
		if err != nil {
			break
		}
		c, err := wire.DecodeControl(line)
		if err != nil {
			return err
		}
		if c.Stop {
			break
		}
		if c.Add != nil {
			idx := len(targets)
			targets = append(targets, *c.Add)
			f.mu.Lock()
			f.adds[pod] = append(f.adds[pod], c.Add.Pod)
			f.mu.Unlock()
			_ = wire.WriteStatus(stderr, wire.Status{Kind: wire.StatusTargetAdded, Index: &idx, Target: c.Add})
			_ = wire.WriteFrame(z, idx, []byte(fmt.Sprintf("2.000000 [000] %s-1 sched_switch: joined\n", c.Add.Pod)))
		}
		if c.Remove != nil {
			_ = wire.WriteStatus(stderr, wire.Status{Kind: wire.StatusTargetEnded, Index: c.Remove, Message: "removed"})
		}
	}
	_ = z.Close()
	_ = wire.WriteStatus(stderr, wire.Status{Kind: wire.StatusStats, Events: uint64(len(targets)), Seconds: 0.2})
	f.mu.Lock()
	f.exited[pod] = true
	f.mu.Unlock()
	return nil
}

func (f *framedHelpers) reactor(action k8stesting.Action) (bool, runtime.Object, error) {
	get := action.(k8stesting.GetAction)
	if !strings.HasPrefix(get.GetName(), session.HelperNamePrefix) {
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
	if f.exited[pod.Name] {
		state = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}
	}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: session.HelperContainerName, State: state}}
	return true, pod, nil
}

func labelledPod(name, node string) *corev1.Pod {
	p := runningPod(name, "app")
	p.Labels = map[string]string{"app": "a"}
	p.Spec.NodeName = node
	return p
}

func TestFanOutOneHelperPerNodeAndJoiningPods(t *testing.T) {
	objs := []runtime.Object{
		labelledPod("a-1", "n1"), labelledPod("a-2", "n1"), labelledPod("a-3", "n2"),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}},
	}
	client := fake.NewClientset(objs...)
	helpers := &framedHelpers{client: client, exited: map[string]bool{}, adds: map[string][]string{}}
	client.PrependReactor("get", "pods", helpers.reactor)
	noPodWatch(client)
	client.PrependReactor("create", "selfsubjectaccessreviews", allowAll)

	var out, errOut bytes.Buffer
	o := NewTraceOptions(genericiooptions.IOStreams{Out: &out, ErrOut: &errOut})
	o.Hook, o.Color = "sched", ColorNever
	c := cluster{client: client, attacher: helpers,
		sources: []session.Source{{What: "-l app=a", Namespace: "ns", Selector: labels.SelectorFromSet(labels.Set{"app": "a"})}}}
	o.newSessionID = func() string { return "s1" }
	o.signals = make(chan os.Signal)
	o.Duration = 2500 * time.Millisecond

	// A fourth pod starts to match on n1 while the trace runs.
	go func() {
		time.Sleep(300 * time.Millisecond)
		_, _ = client.CoreV1().Pods("ns").Create(context.Background(), labelledPod("a-4", "n1"), metav1.CreateOptions{})
	}()
	if err := o.trace(context.Background(), c); err != nil {
		t.Fatalf("Run: %v\nstderr:\n%s", err, errOut.String())
	}

	created := 0
	for _, a := range client.Actions() {
		if a.GetVerb() == "create" && a.GetResource().Resource == "pods" {
			if p := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod); strings.HasPrefix(p.Name, session.HelperNamePrefix) {
				created++
			}
		}
	}
	if created != 2 {
		t.Errorf("created %d helper pods for 2 nodes, want 2 (one per node)", created)
	}
	for _, want := range []string{"a-1/app 1.000000", "a-2/app 1.000000", "a-3/app 1.000000", "a-4/app 2.000000 [000] a-4-1 sched_switch: joined"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(errOut.String(), "+ pod ns/a-4 joined") {
		t.Errorf("the joining pod was not announced:\n%s", errOut.String())
	}
	helpers.mu.Lock()
	joinedVia := fmt.Sprint(helpers.adds)
	helpers.mu.Unlock()
	if !strings.Contains(joinedVia, "a-4") {
		t.Errorf("a-4 was not added to the running helper of n1 by a control message: %s", joinedVia)
	}
	list, _ := client.CoreV1().Pods("ns").List(context.Background(), metav1.ListOptions{LabelSelector: session.HelperSelector()})
	if len(list.Items) != 0 {
		t.Errorf("%d helper pods left", len(list.Items))
	}
	for _, pod := range []string{"a-1", "a-2", "a-3", "a-4"} {
		if !strings.Contains(errOut.String(), "ns/"+pod+"/app") {
			t.Errorf("summary lacks %s:\n%s", pod, errOut.String())
		}
	}
}
