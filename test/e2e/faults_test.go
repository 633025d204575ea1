//go:build e2e

package e2e

import (
	"context"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// Faults while a trace runs. Each ends with the documented behaviour
// (docs/security.md, "What is left behind") and no helper pod left.

// relAfterAttach returns what the plugin said on stderr once it streamed.
func relAfterAttach(stderr string) string {
	if i := strings.Index(stderr, "attached: tracing with hook"); i >= 0 {
		return stderr[i:]
	}
	return stderr
}

// relAssertNoHelpers fails when a helper pod is left in the suite's namespace.
func relAssertNoHelpers(t *testing.T) {
	t.Helper()
	if left := relHelperPodsIn(t, namespace); len(left) != 0 {
		t.Errorf("helper pods left: %v", left)
	}
}

// TestFaultTargetPodDeleted: the only target's pod is deleted while it is
// traced. The helper reports the target's end, the plugin ends the trace.
func TestFaultTargetPodDeleted(t *testing.T) {
	relSpinPod(t, namespace, "fault-victim", "ktalpha", nil)
	r := relStart(t, "pod/fault-victim", "--hook", "sched")
	r.waitAttached(t, 90*time.Second)
	time.Sleep(time.Second)
	if err := client.CoreV1().Pods(namespace).Delete(context.Background(), "fault-victim", metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(1))}); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	if !r.wait(60 * time.Second) {
		t.Fatalf("still tracing 60s after its only target was deleted:\n%s", r.stderr)
	}
	t.Logf("exit %d, %s after the deletion, %d bytes of data\nstderr:\n%s", r.code, r.ended.Sub(deleted).Round(time.Millisecond), r.stdout.bytes.Load(), r.stderr)
	tail := relAfterAttach(r.stderr.String())
	if !strings.Contains(tail, "fault-victim") || !strings.Contains(tail, "gone") && !strings.Contains(tail, "deleted") && !strings.Contains(tail, "ended") {
		t.Errorf("stderr does not say that fault-victim ended")
	}
	if r.code != 0 && !strings.Contains(tail, "error: ") {
		t.Errorf("exit %d without an error message", r.code)
	}
	relAssertNoHelpers(t)
	if left := relWaitNoInstances(t, relSessionIDs(r.stderr.String()), 10*time.Second); len(left) != 0 {
		t.Errorf("tracefs instances left: %v", left)
	}
}

// TestFaultOneOfTwoTargetsDeleted: with two targets from a selector, one
// pod is deleted; the other goes on being traced, and the trace ends
// normally on SIGINT.
func TestFaultOneOfTwoTargetsDeleted(t *testing.T) {
	labels := map[string]string{"rel-fault": "pair"}
	relSpinPod(t, namespace, "fault-pair-a", "ktalpha", labels)
	relSpinPod(t, namespace, "fault-pair-b", "ktbravo", labels)
	t.Cleanup(func() { relDeletePods("fault-pair-a", "fault-pair-b") })
	// exec: each pod runs a child a second, a light and steady stream.
	r := relStart(t, "-l", "rel-fault=pair", "--hook", "exec")
	r.waitAttached(t, 90*time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for r.stdout.linesOf("fault-pair-a/app") == 0 || r.stdout.linesOf("fault-pair-b/app") == 0 {
		if time.Now().After(deadline) || r.exited() {
			t.Fatalf("no data of both pods within 30s (a %d, b %d lines):\n%s", r.stdout.linesOf("fault-pair-a/app"), r.stdout.linesOf("fault-pair-b/app"), r.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := client.CoreV1().Pods(namespace).Delete(context.Background(), "fault-pair-a", metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(1))}); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	if !r.waitFor("fault-pair-a left", 30*time.Second) {
		t.Errorf("no '- pod .../fault-pair-a left' on stderr within 30s of the deletion")
	}
	t.Logf("the plugin reported the pod gone %s after the deletion", time.Since(deleted).Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	b0 := r.stdout.linesOf("fault-pair-b/app")
	a0 := r.stdout.linesOf("fault-pair-a/app")
	time.Sleep(4 * time.Second)
	if r.exited() {
		t.Fatalf("the trace ended (exit %d) when one of its two targets went away:\n%s", r.code, r.stderr)
	}
	if b1 := r.stdout.linesOf("fault-pair-b/app"); b1 <= b0 {
		t.Errorf("no new data of fault-pair-b in the 4s after fault-pair-a went (%d lines before, %d after)", b0, b1)
	}
	if a1 := r.stdout.linesOf("fault-pair-a/app"); a1 != a0 {
		t.Errorf("data of the deleted pod fault-pair-a still comes: %d lines, then %d", a0, a1)
	}
	if err := r.signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if !r.wait(30 * time.Second) {
		t.Fatalf("still running 30s after SIGINT:\n%s", r.stderr)
	}
	t.Logf("exit %d after SIGINT\nstderr:\n%s", r.code, r.stderr)
	if r.code != 0 {
		t.Errorf("exit %d: a selector's pod that goes away is no failure", r.code)
	}
	for _, l := range strings.Split(r.stderr.String(), "\n") {
		if strings.Contains(l, "/fault-pair-b/app") && strings.Contains(l, " exec ") && !strings.Contains(l, "interrupted") {
			t.Errorf("summary row of fault-pair-b does not end 'interrupted': %q", l)
		}
	}
	relAssertNoHelpers(t)
}

// TestFaultHelperPodForceDeleted: someone deletes the helper pod at once
// (kubectl delete --grace-period=0 --force) while it streams.
func TestFaultHelperPodForceDeleted(t *testing.T) {
	relSpinPod(t, namespace, "fault-helper-target", "ktalpha", nil)
	r := relStart(t, "pod/fault-helper-target", "--hook", "sched")
	r.waitAttached(t, 90*time.Second)
	helper := r.helperPod(t)
	time.Sleep(time.Second)
	relInstancesWhileTracing(t, r)
	if err := client.CoreV1().Pods(namespace).Delete(context.Background(), helper, metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))}); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	if !r.wait(60 * time.Second) {
		t.Fatalf("still running 60s after its helper was deleted:\n%s", r.stderr)
	}
	t.Logf("exit %d, %s after the deletion\nstderr:\n%s", r.code, r.ended.Sub(deleted).Round(time.Millisecond), r.stderr)
	if r.code == 0 {
		t.Errorf("exit 0 although the helper was deleted mid-trace")
	}
	if !strings.Contains(relAfterAttach(r.stderr.String()), "error: ") {
		t.Errorf("no error message")
	}
	relAssertNoHelpers(t)
	relCheckStaleInstancesGo(t, relSessionIDs(r.stderr.String()), "fault-helper-target")
}

// TestFaultTracerKilledOnNode: the tracer process is SIGKILLed on the node
// (found by its cgroup, which names the helper's container id).
func TestFaultTracerKilledOnNode(t *testing.T) {
	relSpinPod(t, namespace, "fault-pid-target", "ktalpha", nil)
	r := relStart(t, "pod/fault-pid-target", "--hook", "sched")
	r.waitAttached(t, 90*time.Second)
	helper := r.helperPod(t)
	pid := relTracerPID(t, helper)
	time.Sleep(time.Second)
	relInstancesWhileTracing(t, r)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	// A SIGKILLed tracer cannot remove its instance: it is stale now,
	// until a helper starts on the node (any session's: other engineers'
	// too) and removes instances whose owner PID is gone.
	time.Sleep(100 * time.Millisecond)
	t.Logf("instances of the session 100ms after the kill: %v", relInstancesOf(t, relSessionIDs(r.stderr.String())))
	if !r.wait(60 * time.Second) {
		t.Fatalf("still running 60s after the tracer was killed:\n%s", r.stderr)
	}
	t.Logf("exit %d, %s after the kill\nstderr:\n%s", r.code, r.ended.Sub(killed).Round(time.Millisecond), r.stderr)
	if r.code == 0 {
		t.Errorf("exit 0 although the tracer was killed")
	}
	if tail := relAfterAttach(r.stderr.String()); !strings.Contains(tail, "error: ") || !strings.Contains(tail, "137") && !strings.Contains(tail, "kill") {
		t.Errorf("the error does not say the tracer was killed (exit code 137)")
	}
	relAssertNoHelpers(t)
	relCheckStaleInstancesGo(t, relSessionIDs(r.stderr.String()), "fault-pid-target")
}

// relTracerPID finds the helper's tracer process on the node.
func relTracerPID(t *testing.T, helper string) int {
	t.Helper()
	// The plugin attaches as soon as the runtime runs the tracer, before the
	// kubelet's next relist puts the container id in the pod's status.
	var id string
	for deadline := time.Now().Add(10 * time.Second); id == "" && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		p, err := client.CoreV1().Pods(namespace).Get(context.Background(), helper, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name == "tracer" {
				_, id, _ = strings.Cut(cs.ContainerID, "://")
			}
		}
	}
	if id == "" {
		t.Fatalf("helper %s has no tracer container id 10s after the plugin attached", helper)
	}
	for _, pid := range relPIDsOfContainer(id) {
		if relComm(pid) == "tracer" {
			return pid
		}
	}
	t.Fatalf("no tracer process in the cgroup of container %s", id)
	return 0
}

// relInstancesWhileTracing checks that the session's tracefs instance
// exists while it streams (so that its absence later means something).
func relInstancesWhileTracing(t *testing.T, r *relRunning) {
	t.Helper()
	if in := relInstancesOf(t, relSessionIDs(r.stderr.String())); len(in) == 0 {
		t.Errorf("no tracefs instance of the session while it traces")
	} else {
		t.Logf("while tracing: %v", in)
	}
}

// relCheckStaleInstancesGo: a killed tracer cannot remove its tracefs
// instance; the next helper on the node does (instances carry their
// owner's PID). A short trace on the node must leave none of sessions'.
func relCheckStaleInstancesGo(t *testing.T, sessions []string, pod string) {
	t.Helper()
	left := relWaitNoInstances(t, sessions, 5*time.Second)
	if len(left) == 0 {
		t.Logf("the killed session's tracefs instance is gone already (its tracer removed it, or another helper on the node did)")
		return
	}
	t.Logf("instances of the killed session, before the next trace on the node: %v", left)
	r := trace(t, "pod/"+pod, "--hook", "sched", "--duration", "1s")
	if r.code != 0 {
		t.Errorf("the next trace: exit %d", r.code)
	}
	if left := relInstancesOf(t, sessions); len(left) != 0 {
		t.Errorf("tracefs instances of the killed session remain after the next helper ran on the node: %v", left)
	}
	relAssertNoHelpers(t)
}

// relProxy relays TCP to the API server, and can cut every connection it
// carries while it keeps accepting new ones: the attach stream ends, the
// plugin's next requests get through.
type relProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  map[net.Conn]bool
}

func relStartProxy(t *testing.T, target string) *relProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &relProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			pipe := func(dst, src net.Conn) {
				_, _ = io.Copy(dst, src)
				dst.Close()
				src.Close()
				p.mu.Lock()
				delete(p.conns, dst)
				delete(p.conns, src)
				p.mu.Unlock()
			}
			go pipe(up, c)
			go pipe(c, up)
		}
	}()
	t.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

// cut closes every connection; it returns how many it closed.
func (p *relProxy) cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST, as a dropped network would look
		}
		c.Close()
		delete(p.conns, c)
		n++
	}
	return n
}

// relProxiedKubeconfig is the admin kubeconfig with the server behind a proxy
// (127.0.0.1 is in the API server's certificate).
func relProxiedKubeconfig(t *testing.T) (string, *relProxy) {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(os.Getenv("KUBECONFIG"))
	if err != nil {
		t.Fatal(err)
	}
	cluster := cfg.Clusters[cfg.Contexts[cfg.CurrentContext].Cluster]
	u, err := url.Parse(cluster.Server)
	if err != nil {
		t.Fatal(err)
	}
	p := relStartProxy(t, u.Host)
	cluster.Server = "https://" + p.ln.Addr().String()
	path := filepath.Join(t.TempDir(), "proxied.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path, p
}

// TestFaultAttachStreamCut: the network between the plugin and the API
// server drops while the trace streams (a proxy in between resets every
// connection). The tracer loses its stdin with the attach session and
// stops; the plugin must say that the stream broke, exit non-zero, and
// still delete the helper (its next connections get through).
func TestFaultAttachStreamCut(t *testing.T) {
	relSpinPod(t, namespace, "fault-cut-target", "ktalpha", nil)
	kubeconfig, proxy := relProxiedKubeconfig(t)
	r := relStart(t, "pod/fault-cut-target", "--hook", "sched", "--kubeconfig", kubeconfig)
	r.waitAttached(t, 90*time.Second)
	helper := r.helperPod(t)
	time.Sleep(time.Second)
	before := r.stdout.bytes.Load()
	n := proxy.cut()
	cut := time.Now()
	t.Logf("cut %d connections after %d bytes of data", n, before)
	if !r.wait(60 * time.Second) {
		t.Fatalf("still running 60s after the stream was cut:\n%s", r.stderr)
	}
	t.Logf("exit %d, %s after the cut\nstderr:\n%s", r.code, r.ended.Sub(cut).Round(time.Millisecond), r.stderr)
	if r.code == 0 {
		t.Errorf("exit 0 although the stream was cut: the data may be incomplete")
	}
	tail := relAfterAttach(r.stderr.String())
	if !strings.Contains(tail, "error: ") || !strings.Contains(tail, "stream") && !strings.Contains(tail, "statistics") {
		t.Errorf("the error does not say that the stream broke")
	}
	if _, err := client.CoreV1().Pods(namespace).Get(context.Background(), helper, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("helper %s still exists (err %v)", helper, err)
	}
	relAssertNoHelpers(t)
	relCheckStaleInstancesGo(t, relSessionIDs(r.stderr.String()), "fault-cut-target")
}

// TestFaultPluginSIGKILLed: the plugin dies with SIGKILL. The kubelet ends
// the attach session, the helper sees end of stdin and stops by itself
// within 30 s, removing its tracefs instance; its pod carries
// activeDeadlineSeconds (--duration + 5 min) as the last backstop, and
// waits for `kubectl trace cleanup`.
func TestFaultPluginSIGKILLed(t *testing.T) {
	relSpinPod(t, namespace, "fault-sigkill-target", "ktalpha", nil)

	// Without --duration the backstop is a day.
	r0 := trace(t, "pod/fault-sigkill-target", "--hook", "sched", "--dry-run")
	var dry corev1.Pod
	if err := yaml.Unmarshal([]byte(r0.stdout), &dry); err != nil || r0.code != 0 {
		t.Fatalf("--dry-run: exit %d, %v", r0.code, err)
	}
	if d := dry.Spec.ActiveDeadlineSeconds; d == nil || *d != 86400 {
		t.Errorf("activeDeadlineSeconds without --duration = %v, want 86400", d)
	}

	r := relStart(t, "pod/fault-sigkill-target", "--hook", "syscalls", "--duration", "10m")
	r.waitAttached(t, 90*time.Second)
	helper := r.helperPod(t)
	p, err := client.CoreV1().Pods(namespace).Get(context.Background(), helper, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d := p.Spec.ActiveDeadlineSeconds; d == nil || *d != 900 {
		t.Errorf("activeDeadlineSeconds with --duration 10m = %v, want 900", d)
	}
	if c := p.Spec.Containers[0]; !c.Stdin || !c.StdinOnce {
		t.Errorf("the tracer's stdin %v, stdinOnce %v: the dead-man's switch needs both", c.Stdin, c.StdinOnce)
	}
	if err := r.signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r.wait(10 * time.Second)
	killed := time.Now()
	for {
		p, err := client.CoreV1().Pods(namespace).Get(context.Background(), helper, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			t.Logf("helper %s after %s", p.Status.Phase, time.Since(killed).Round(time.Millisecond))
			if p.Status.Phase != corev1.PodSucceeded {
				t.Errorf("helper ended %s, want Succeeded", p.Status.Phase)
			}
			break
		}
		if time.Since(killed) > 30*time.Second {
			t.Fatalf("helper still %s 30s after the plugin was killed", p.Status.Phase)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if left := relWaitNoInstances(t, relSessionIDs(r.stderr.String()), 5*time.Second); len(left) != 0 {
		t.Errorf("the helper ended but left tracefs instances: %v", left)
	}
	c := trace(t, "cleanup")
	if c.code != 0 || !strings.Contains(c.stdout, helper) {
		t.Errorf("cleanup: exit %d, stdout %q", c.code, c.stdout)
	}
	relAssertNoHelpers(t)
}
