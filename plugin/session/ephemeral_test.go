package session

import (
	"context"
	"errors"
	"testing"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func TestEphemeralContainer(t *testing.T) {
	ec := EphemeralContainer(EphemeralParams{Name: "kubectl-trace-s1", Image: "img", Target: "app", EncodedRequest: "ENC",
		Needs: hooks.Needs{Capabilities: []string{"BPF", "PERFMON"}, HostPID: true}})
	if ec.TargetContainerName != "app" || !ec.Stdin || !ec.StdinOnce || ec.TTY {
		t.Errorf("ephemeral container does not join app's PID namespace with stdin once: %+v", ec)
	}
	if got := ec.SecurityContext.Capabilities.Add; len(got) != 2 || got[0] != "BPF" {
		t.Errorf("capabilities = %v, want the hook's", got)
	}
	if ec.Env[0].Name != wire.RequestEnv || ec.Env[0].Value != "ENC" {
		t.Errorf("env = %v", ec.Env)
	}
}

func TestAddEphemeralDisabled(t *testing.T) {
	client := fake.NewClientset(runningPod("web", "app"))
	client.PrependReactor("patch", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if action.GetSubresource() == "ephemeralcontainers" {
			return true, nil, apierrors.NewNotFound(schema.GroupResource{Resource: "pods/ephemeralcontainers"}, "web")
		}
		return false, nil, nil
	})
	err := addEphemeral(context.Background(), client, "ns", "web", corev1.EphemeralContainer{})
	if !errors.Is(err, ErrEphemeralDisabled) {
		t.Fatalf("error = %v, want ErrEphemeralDisabled", err)
	}
}
