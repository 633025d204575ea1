//go:build e2e

package e2e

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// traceWhile starts a trace of pod in ephemeral mode, runs act once the
// trace streams, and returns stdout and stderr after stopping it.
func traceWhile(t *testing.T, pod string, args []string, act func()) (string, string) {
	t.Helper()
	cmd := traceCmd(append([]string{"pod/" + pod, "--mode", "ephemeral"}, args...)...)
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() { _ = cmd.Wait(); done <- cmd.ProcessState.ExitCode() }()
	waitFor(t, stderr, "tracing with hook", 90*time.Second)
	act()
	time.Sleep(2 * time.Second)
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d:\n%s", code, stderr)
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("still running 60s after SIGINT:\n%s", stderr)
	}
	if !strings.Contains(stderr.String(), "cannot be removed") {
		t.Errorf("no warning that the ephemeral container stays:\n%s", stderr)
	}
	p, err := client.CoreV1().Pods(namespace).Get(context.Background(), pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Spec.EphemeralContainers) == 0 {
		t.Errorf("pod %s has no ephemeral container: the trace did not run in ephemeral mode", pod)
	}
	return stdout.String(), stderr.String()
}

func TestEphemeralModeSched(t *testing.T) {
	workloadPod(t, "eph-sched", "ktalpha")
	workloadPod(t, "eph-sched-noise", "ktnoise")
	out, stderr := traceWhile(t, "eph-sched", []string{"--hook", "sched"}, func() { time.Sleep(2 * time.Second) })
	comms, _ := tracedComms(t, out)
	if comms["ktalpha"] == 0 {
		t.Errorf("no sched event of the target's process; traced tasks: %v", comms)
	}
	if comms["ktnoise"] != 0 {
		t.Errorf("the noise pod's process is the traced task in %d events", comms["ktnoise"])
	}
	assertClean(t, stderr)
}

func TestEphemeralModeExec(t *testing.T) {
	workloadPod(t, "eph-exec", "ktalpha")
	workloadPod(t, "eph-exec-noise", "ktnoise")
	out, stderr := traceWhile(t, "eph-exec", []string{"--hook", "exec"}, func() {
		kubectlExec(t, "eph-exec", "sh", "-c", "cp /bin/busybox /tmp/ktmark-target && (/tmp/ktmark-target true || true)")
		kubectlExec(t, "eph-exec-noise", "sh", "-c", "cp /bin/busybox /tmp/ktmark-noise && (/tmp/ktmark-noise true || true)")
	})
	if !strings.Contains(out, "/tmp/ktmark-target") {
		t.Errorf("no exec of /tmp/ktmark-target in:\n%s", out)
	}
	if strings.Contains(out, "ktmark-noise") {
		t.Errorf("the noise pod's exec was traced:\n%s", out)
	}
	assertClean(t, stderr)
}

func TestEphemeralModeTcpdump(t *testing.T) {
	target := serverPod(t, "eph-net", "ktalpha", "8080", nil)
	noise := serverPod(t, "eph-net-noise", "ktnoise", "9090", nil)
	out, stderr := traceWhile(t, "eph-net", []string{"--hook", "tcpdump"}, func() {
		kubectlExec(t, "eph-net-noise", "sh", "-c", "echo hi | nc -w 1 "+target.Status.PodIP+" 8080")
		kubectlExec(t, "eph-net-noise", "sh", "-c", "echo hi | nc -w 1 127.0.0.1 9090")
	})
	if !strings.Contains(out, ".8080") {
		t.Errorf("no packet of the connection to the target's port 8080:\n%s", out)
	}
	if strings.Contains(out, ".9090") || strings.Contains(out, noise.Status.PodIP+".9090") {
		t.Errorf("the noise pod's own traffic on 9090 was captured:\n%s", out)
	}
	assertClean(t, stderr)
}
