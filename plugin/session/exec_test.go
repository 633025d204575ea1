package session

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	utilexec "k8s.io/client-go/util/exec"
)

// execStreams fakes the helper's hold (an attach that lasts until its
// stdin ends) and the commands run beside it.
type execStreams struct {
	mu   sync.Mutex
	argv [][]string
}

func (f *execStreams) Attach(ctx context.Context, _, _, _ string, stdin io.Reader, _, _ io.Writer) error {
	_, _ = io.Copy(io.Discard, stdin)
	return ctx.Err()
}

func (f *execStreams) Exec(_ context.Context, _, _, _ string, argv []string, _ io.Reader, stdout, _ io.Writer) error {
	f.mu.Lock()
	f.argv = append(f.argv, argv)
	f.mu.Unlock()
	id := argv[3]
	fmt.Fprintf(stdout, "ran in %s\n", id[len(id)-4:])
	if strings.HasSuffix(id, "beef") {
		return utilexec.CodeExitError{Err: fmt.Errorf("exit 3"), Code: 3}
	}
	return nil
}

func TestExecOneHoldingHelperPerNodeRunningNoHook(t *testing.T) {
	a, b := runningPod("a", "app"), runningPod("b", "app")
	a.Labels, b.Labels = map[string]string{"app": "x"}, map[string]string{"app": "x"}
	b.Status.ContainerStatuses[0].ContainerID = "containerd://0123456789abcdef0123456789abcdef0123456789abcdef0123456789dbeef"
	client := fake.NewClientset(a, b, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns"}})
	noPodWatch(client)
	client.PrependReactor("create", "selfsubjectaccessreviews", allowAll)
	client.PrependReactor("get", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		get := action.(k8stesting.GetAction)
		if !strings.HasPrefix(get.GetName(), HelperNamePrefix) {
			return false, nil, nil
		}
		obj, err := client.Tracker().Get(corev1.SchemeGroupVersion.WithResource("pods"), get.GetNamespace(), get.GetName())
		if err != nil {
			return true, nil, err
		}
		pod := obj.(*corev1.Pod).DeepCopy()
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: HelperContainerName, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
		return true, pod, nil
	})
	streams := &execStreams{}
	var stdout bytes.Buffer
	results, err := Exec(context.Background(), ExecConfig{ID: "s1", Client: client, Streams: streams,
		Sources:    []Source{{What: "-l app=x", Namespace: "ns", Selector: labels.SelectorFromSet(labels.Set{"app": "x"})}},
		Namespaces: "net", Command: []string{"ip", "addr"}, Stdout: &stdout, Stderr: io.Discard, Image: "img", StartTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(results, func(i, j int) bool { return results[i].Target.Pod < results[j].Target.Pod })
	var codes []int
	for _, r := range results {
		if r.Err != nil {
			t.Errorf("%s: %v", r.Target, r.Err)
		}
		codes = append(codes, r.Code)
	}
	if diff := cmp.Diff([]int{0, 3}, codes); diff != "" {
		t.Errorf("exit codes of a, b (-want +got):\n%s", diff)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	sort.Strings(lines)
	if diff := cmp.Diff([]string{"a/app ran in cdef", "b/app ran in beef"}, lines); diff != "" {
		t.Errorf("prefixed output (-want +got):\n%s", diff)
	}
	var created []*corev1.Pod
	for _, act := range client.Actions() {
		if act.GetVerb() == "create" && act.GetResource().Resource == "pods" {
			created = append(created, act.(k8stesting.CreateAction).GetObject().(*corev1.Pod))
		}
	}
	if len(created) != 1 {
		t.Fatalf("created %d helper pods for one node, want 1", len(created))
	}
	h := created[0]
	if _, ok := h.Annotations[AnnotationHook]; ok {
		t.Errorf("the exec helper is annotated with hook %q: it runs none", h.Annotations[AnnotationHook])
	}
	if diff := cmp.Diff([]string{"hold"}, h.Spec.Containers[0].Args); diff != "" {
		t.Errorf("helper args (-want +got):\n%s", diff)
	}
	if h.Labels[LabelSession] != "s1" || h.Annotations[AnnotationTargets] != "ns/a/app,ns/b/app" {
		t.Errorf("helper labels %v annotations %v", h.Labels, h.Annotations)
	}
	if got := streams.argv[0][:7]; !cmp.Equal(got[:2], []string{"/usr/local/bin/tracer", "exec"}) || got[4] != "--ns" || got[5] != "net" {
		t.Errorf("argv = %q", streams.argv[0])
	}
	if list, _ := client.CoreV1().Pods("ns").List(context.Background(), metav1.ListOptions{LabelSelector: HelperSelector()}); len(list.Items) != 0 {
		t.Errorf("%d helper pods left", len(list.Items))
	}
}
