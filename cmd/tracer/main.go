// Command tracer is the helper that runs inside the tracer image on the
// target's node: it reads the session's wire.Request from the environment
// and runs it (package runner). Trace data goes to stdout, status lines to
// stderr.
//
//	tracer            run the request in $KTRACE_REQUEST
//	tracer hold       wait for the end of stdin (the helper of kubectl trace exec)
//	tracer exec --container-id ID [--ns net,pid,…] -- CMD ARGS…
//	                  run CMD in that container's namespaces (kubectl trace exec)
//	tracer version    print the version
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"github.com/ktrace-dev/kubectl-trace/tracer-image/runner"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

// terminationLog is where Kubernetes reads a container's last words.
const terminationLog = "/dev/termination-log"

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "version", "--version":
			fmt.Println(version)
			return
		case "hold":
			hold()
			return
		case "exec":
			if err := execIn(os.Args[2:]); err != nil {
				fmt.Fprintln(os.Stderr, "tracer exec:", err)
				os.Exit(126)
			}
			return
		default:
			fmt.Fprintf(os.Stderr, "usage: tracer [hold | exec --container-id ID [--ns net,…] -- CMD… | version]\n(the request comes in $%s)\n", wire.RequestEnv)
			os.Exit(2)
		}
	}
	// SIGTERM (pod deletion, activeDeadlineSeconds) and SIGINT stop the
	// session the way the end of stdin does: drain, detach, report.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	err := run(ctx)
	stop()
	if err != nil {
		writeTerminationLog(err.Error())
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	enc, ok := os.LookupEnv(wire.RequestEnv)
	if !ok || enc == "" {
		err := fmt.Errorf("no request in $%s: the tracer runs in a helper pod that kubectl trace creates", wire.RequestEnv)
		wire.WriteStatus(os.Stderr, wire.Status{Kind: wire.StatusError, Message: err.Error()})
		return err
	}
	req, err := wire.DecodeRequest(enc)
	if err != nil {
		wire.WriteStatus(os.Stderr, wire.Status{Kind: wire.StatusError, Message: err.Error()})
		return err
	}
	// Run reports its own errors on stderr.
	return runner.Run(ctx, req, runner.Config{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
}

// writeTerminationLog leaves msg where Kubernetes shows it (kubectl
// describe pod), when the file exists: that is, inside a pod.
func writeTerminationLog(msg string) {
	f, err := os.OpenFile(terminationLog, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(os.Stderr, "writing %s: %v\n", terminationLog, err)
		}
		return
	}
	defer f.Close()
	fmt.Fprintln(f, msg)
}
