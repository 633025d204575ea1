package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"github.com/ktrace-dev/kubectl-trace/tracer-image/runner"
)

// hold keeps the helper of `kubectl trace exec` alive until the plugin's
// attach session ends: the kubelet then closes stdin (stdinOnce), so the
// helper never outlives the plugin by more than that.
func hold() {
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(done)
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-done:
	case <-sig:
	}
}

// execIn replaces the tracer with nsenter running the command in the
// target container's namespaces, so stdin, stdout, stderr and the exit code
// are the tool's own.
func execIn(args []string) error {
	fs := flag.NewFlagSet("tracer exec", flag.ContinueOnError)
	id := fs.String("container-id", "", "the target's container ID, as in the pod status (containerd://…)")
	ns := fs.String("ns", "net", "namespaces to enter, comma separated: "+strings.Join(wire.ExecNamespaces, ","))
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *id == "" {
		return errors.New("--container-id is required")
	}
	argv, err := runner.ExecArgv("/proc", wire.Target{ContainerID: *id, Container: *id}, strings.Split(*ns, ","), fs.Args())
	if err != nil {
		return err
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return fmt.Errorf("finding nsenter in the tracer image: %w", err)
	}
	return syscall.Exec(path, argv, os.Environ())
}
