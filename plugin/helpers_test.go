package plugin

import (
	"compress/flate"
	"errors"
	"io"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// The fakes the command tests share with the engine's (plugin/session).

const testCID = "containerd://0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// runningPod is a pod as the API server shows it once its containers run.
func runningPod(name string, containers ...string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name)},
		Spec:       corev1.PodSpec{NodeName: "n1"},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c})
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c, ContainerID: testCID, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
		})
	}
	return p
}

// allowAll answers every SelfSubjectAccessReview with yes.
func allowAll(action k8stesting.Action) (bool, runtime.Object, error) {
	review := action.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview).DeepCopy()
	review.Status.Allowed = true
	return true, review, nil
}

// noPodWatch makes watches of pods fail, so the plugin polls: the tests'
// get reactors play the kubelet, and the fake's watch would not see them.
func noPodWatch(client *fake.Clientset) {
	client.PrependWatchReactor("pods", func(k8stesting.Action) (bool, watch.Interface, error) {
		return true, nil, errors.New("watch not faked: the get reactor plays the kubelet")
	})
}

// deflatingWriter is a fake helper's compressed stdout (Request.Compress):
// every write is sync-flushed, as the helper's flusher does.
type deflatingWriter struct{ z *flate.Writer }

func newDeflating(w io.Writer) *deflatingWriter {
	z, _ := flate.NewWriter(w, flate.BestSpeed)
	return &deflatingWriter{z: z}
}

func (d *deflatingWriter) Write(p []byte) (int, error) {
	n, err := d.z.Write(p)
	if err == nil {
		err = d.z.Flush()
	}
	return n, err
}

// Close ends the stream, as the helper's last flush does.
func (d *deflatingWriter) Close() error { return d.z.Close() }
