package plugin

import (
	"context"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
)

// Attacher streams a running container's stdin, stdout and stderr. It is an
// interface so that tests can record what the session does with it.
type Attacher interface {
	Attach(ctx context.Context, namespace, pod, container string, stdin io.Reader, stdout, stderr io.Writer) error
}

// Execer runs a command in a container, like `kubectl exec`.
type Execer interface {
	Exec(ctx context.Context, namespace, pod, container string, command []string, stdin io.Reader, stdout, stderr io.Writer) error
}

// remoteAttacher attaches through the API server, like `kubectl attach -i`:
// WebSocket first, SPDY when the server or a proxy cannot upgrade.
type remoteAttacher struct {
	config *rest.Config
	client kubernetes.Interface
}

func (a remoteAttacher) Attach(ctx context.Context, namespace, pod, container string, stdin io.Reader, stdout, stderr io.Writer) error {
	req := a.client.CoreV1().RESTClient().Post().
		Resource("pods").Namespace(namespace).Name(pod).SubResource("attach").
		VersionedParams(&corev1.PodAttachOptions{
			Container: container,
			Stdin:     stdin != nil,
			Stdout:    true,
			Stderr:    true,
			TTY:       false,
		}, scheme.ParameterCodec)
	return a.stream(ctx, req, namespace, pod, stdin, stdout, stderr)
}

// Exec runs command in the container and streams its standard streams; a
// non-zero exit comes back as client-go's exec.CodeExitError.
func (a remoteAttacher) Exec(ctx context.Context, namespace, pod, container string, command []string, stdin io.Reader, stdout, stderr io.Writer) error {
	req := a.client.CoreV1().RESTClient().Post().
		Resource("pods").Namespace(namespace).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{
			Container: container,
			Command:   command,
			Stdin:     stdin != nil,
			Stdout:    true,
			Stderr:    true,
		}, scheme.ParameterCodec)
	return a.stream(ctx, req, namespace, pod, stdin, stdout, stderr)
}

func (a remoteAttacher) stream(ctx context.Context, req *rest.Request, namespace, pod string, stdin io.Reader, stdout, stderr io.Writer) error {
	spdy, err := remotecommand.NewSPDYExecutor(a.config, "POST", req.URL())
	if err != nil {
		return fmt.Errorf("preparing a stream to %s/%s: %w", namespace, pod, err)
	}
	ws, err := remotecommand.NewWebSocketExecutor(a.config, "GET", req.URL().String())
	if err != nil {
		return fmt.Errorf("preparing a stream to %s/%s: %w", namespace, pod, err)
	}
	exec, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return fmt.Errorf("preparing a stream to %s/%s: %w", namespace, pod, err)
	}
	return exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: stdout, Stderr: stderr})
}
