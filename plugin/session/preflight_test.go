package session

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// allowAll answers every SelfSubjectAccessReview with yes.
func allowAll(action k8stesting.Action) (bool, runtime.Object, error) {
	review := action.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview).DeepCopy()
	review.Status.Allowed = true
	return true, review, nil
}

// denyAttach allows everything but pods/attach.
func denyAttach(action k8stesting.Action) (bool, runtime.Object, error) {
	review := action.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview).DeepCopy()
	review.Status.Allowed = review.Spec.ResourceAttributes.Subresource != "attach"
	return true, review, nil
}

func testHelperPod(ns string) *corev1.Pod {
	return HelperPod(HelperParams{
		Name: "kubectl-trace-s1", Namespace: ns, Node: "n1", Image: "img:v1",
		Request:  wire.Request{SessionID: "s1", Hook: "sched"},
		Deadline: time.Hour,
		Needs:    hooks.Needs{Capabilities: []string{"SYS_ADMIN"}, HostPID: true},
	})
}

func TestPreflight(t *testing.T) {
	tests := []struct {
		name     string
		labels   map[string]string
		reactor  k8stesting.ReactionFunc
		wantErr  error
		wantText []string
	}{
		{name: "privileged namespace", reactor: allowAll},
		{name: "explicitly privileged", labels: map[string]string{"pod-security.kubernetes.io/enforce": "privileged"}, reactor: allowAll},
		{name: "baseline forbids the helper", labels: map[string]string{"pod-security.kubernetes.io/enforce": "baseline"}, reactor: allowAll,
			wantErr: ErrPodSecurity, wantText: []string{`enforces Pod Security level "baseline"`, "host namespaces", "non-default capabilities", "SYS_ADMIN", "--helper-namespace", "kubectl label namespace ns pod-security.kubernetes.io/enforce=privileged"}},
		{name: "restricted forbids the helper", labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}, reactor: allowAll,
			wantErr: ErrPodSecurity, wantText: []string{`"restricted"`}},
		{name: "no attach right", reactor: denyAttach,
			wantErr: ErrForbidden, wantText: []string{`you may not create pods/attach in namespace "ns"`, "docs/security.md"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns", Labels: tt.labels}})
			client.PrependReactor("create", "selfsubjectaccessreviews", tt.reactor)
			err := preflight(context.Background(), client, testHelperPod("ns"))
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			for _, s := range tt.wantText {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error lacks %q: %v", s, err)
				}
			}
		})
	}
}

func TestPreflightMissingNamespace(t *testing.T) {
	client := fake.NewClientset()
	client.PrependReactor("create", "selfsubjectaccessreviews", allowAll)
	err := preflight(context.Background(), client, testHelperPod("gone"))
	if err == nil || !strings.Contains(err.Error(), `namespace "gone" not found`) {
		t.Fatalf("error = %v", err)
	}
}
