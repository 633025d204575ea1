// Command kubectl-trace is the kubectl plugin: `kubectl trace pod/web --hook sched`.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/ktrace-dev/kubectl-trace/plugin"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func main() {
	cmd := plugin.NewCmdTrace(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	// The one place errors are printed; everything below returns them.
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
