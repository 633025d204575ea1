// Command kubectl-trace is the kubectl plugin: `kubectl trace pod/web --hook sched`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/go-logr/logr"
	"github.com/ktrace-dev/kubectl-trace/plugin"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/klog/v2"
)

func main() {
	// client-go logs through klog, and reports benign ends of streams (a
	// closed connection after an exec finished) as errors; the plugin says
	// what matters itself. KUBECTL_TRACE_DEBUG=1 keeps klog's output, and a
	// higher number is klog's verbosity (6 shows every API request and its
	// latency), as kubectl's -v would.
	if debug := os.Getenv("KUBECTL_TRACE_DEBUG"); debug != "" {
		fs := flag.NewFlagSet("klog", flag.ContinueOnError)
		klog.InitFlags(fs)
		if err := fs.Set("v", debug); err != nil {
			fmt.Fprintf(os.Stderr, "warning: KUBECTL_TRACE_DEBUG=%q is not a klog verbosity (a number)\n", debug)
		}
	} else {
		klog.LogToStderr(false)
		klog.SetOutput(io.Discard)
		// Contextual logging (runtime.HandleError) goes through the
		// global logger, not klog's output.
		klog.SetLogger(logr.Discard())
	}
	cmd := plugin.NewCmdTrace(genericclioptions.NewConfigFlags(true), genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
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
