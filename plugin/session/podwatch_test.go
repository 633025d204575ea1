package session

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// noPodWatch makes watches of pods fail, so the plugin polls: the tests'
// get reactors play the kubelet, and the fake's watch would not see them.
func noPodWatch(client *fake.Clientset) {
	client.PrependWatchReactor("pods", func(k8stesting.Action) (bool, watch.Interface, error) {
		return true, nil, errors.New("watch not faked: the get reactor plays the kubelet")
	})
}

func helperPodIn(state corev1.ContainerState) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "h", Namespace: "ns"},
		Status:     corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: HelperContainerName, State: state}}},
	}
}

func watchedClient(w *watch.FakeWatcher) *fake.Clientset {
	client := fake.NewClientset()
	client.PrependWatchReactor("pods", func(a k8stesting.Action) (bool, watch.Interface, error) {
		if got := a.(k8stesting.WatchAction).GetWatchRestrictions().Fields.String(); got != "metadata.name=h" {
			return true, nil, errors.New("watch not restricted to the one pod: " + got)
		}
		return true, w, nil
	})
	return client
}

func TestWaitRunningFollowsTheWatch(t *testing.T) {
	w := watch.NewFakeWithChanSize(4, false)
	w.Add(helperPodIn(corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}))
	w.Modify(helperPodIn(corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}))
	start := time.Now()
	if err := waitRunning(context.Background(), watchedClient(w), "ns", "h", 10*time.Second, report{}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > pollInterval {
		t.Errorf("running seen after %s: the watch's update should end the wait at once", d)
	}
}

func TestWaitRunningPodDeleted(t *testing.T) {
	w := watch.NewFakeWithChanSize(4, false)
	w.Add(helperPodIn(corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}))
	w.Delete(helperPodIn(corev1.ContainerState{}))
	err := waitRunning(context.Background(), watchedClient(w), "ns", "h", 10*time.Second, report{})
	if err == nil || !strings.Contains(err.Error(), "was deleted while starting") {
		t.Fatalf("got %v, want the pod's deletion", err)
	}
}

func TestWaitRunningStartFailure(t *testing.T) {
	w := watch.NewFakeWithChanSize(4, false)
	w.Modify(helperPodIn(corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: "not found"}}))
	err := waitRunning(context.Background(), watchedClient(w), "ns", "h", 10*time.Second, report{})
	if err == nil || !strings.Contains(err.Error(), "cannot pull the tracer image") {
		t.Fatalf("got %v, want the image pull failure", err)
	}
}

func TestWaitRunningPollsWithoutWatch(t *testing.T) {
	client := fake.NewClientset(helperPodIn(corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}))
	noPodWatch(client)
	if err := waitRunning(context.Background(), client, "ns", "h", 10*time.Second, report{}); err != nil {
		t.Fatal(err)
	}
	client = fake.NewClientset()
	noPodWatch(client)
	err := waitRunning(context.Background(), client, "ns", "h", 10*time.Second, report{})
	if err == nil || !strings.Contains(err.Error(), "was deleted while starting") {
		t.Fatalf("got %v, want the pod's absence", err)
	}
}

func TestWaitRunningTimeout(t *testing.T) {
	w := watch.NewFakeWithChanSize(4, false)
	w.Add(helperPodIn(corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}))
	err := waitRunning(context.Background(), watchedClient(w), "ns", "h", 300*time.Millisecond, report{})
	if err == nil || !strings.Contains(err.Error(), "did not start within 300ms (last state: ContainerCreating)") {
		t.Fatalf("got %v, want the timeout with the last state", err)
	}
}
