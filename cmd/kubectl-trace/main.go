// Command kubectl-trace is the kubectl plugin: `kubectl trace pod/web --hook sched`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/go-logr/logr"
	"github.com/ktrace-dev/kubectl-trace/plugin"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/klog/v2"
)

func main() {
	// client-go logs through klog, and reports benign ends of streams (a
	// closed connection after an exec finished) as errors; the plugin says
	// what matters itself. KUBECTL_TRACE_DEBUG=1 keeps klog's output.
	if os.Getenv("KUBECTL_TRACE_DEBUG") == "" {
		klog.LogToStderr(false)
		klog.SetOutput(io.Discard)
		// Contextual logging (runtime.HandleError) goes through the
		// global logger, not klog's output.
		klog.SetLogger(logr.Discard())
	}
	cmd := plugin.NewCmdTrace(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	// The one place errors are printed; everything below returns them.
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		// kubectl trace exec returns the tool's exit code; the tool has
		// already said why.
		var exit plugin.ExitCodeError
		if errors.As(err, &exit) {
			os.Exit(exit.Code)
		}
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
