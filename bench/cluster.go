//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The cluster parts drive the real commands (kubectl trace, kubectl debug)
// against the local cluster, with the environment `make e2e` sets:
// KUBECONFIG, and PATH with bin/ (the plugin) and .cluster/bin (kubectl).

const workloadImage = "ktrace.local/workload:v1"

// kubectl runs kubectl and returns its combined output.
func kubectl(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "kubectl", args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// checkCluster fails early, with what to do, when the cluster is not there.
func checkCluster(ctx context.Context) error {
	if os.Getenv("KUBECONFIG") == "" {
		return errors.New("KUBECONFIG is not set: run through make bench, or export KUBECONFIG=$PWD/.cluster/kubeconfig PATH=$PWD/bin:$PWD/.cluster/bin:$PATH after make cluster-up")
	}
	if _, err := kubectl(ctx, "", "trace", "version"); err != nil {
		return fmt.Errorf("kubectl does not find the plugin (bin/ on PATH?): %w", err)
	}
	if _, err := kubectl(ctx, "", "get", "nodes"); err != nil {
		return fmt.Errorf("the cluster does not answer (make cluster-up): %w", err)
	}
	return nil
}

// pod is a workload pod of the benchmark; its one container is "app".
type pod struct {
	name    string
	labels  map[string]string
	command []string
	// hostDir is mounted at /ktbench (the node is this machine).
	hostDir string
}

func (p pod) yaml(ns string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: %s\n  labels:\n    ktbench: \"true\"\n", p.name, ns)
	for k, v := range p.labels {
		fmt.Fprintf(&b, "    %s: %s\n", k, v)
	}
	fmt.Fprintf(&b, "spec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: app\n    image: %s\n    imagePullPolicy: Never\n    command:\n", workloadImage)
	for _, c := range p.command {
		fmt.Fprintf(&b, "    - %q\n", c)
	}
	if p.hostDir != "" {
		fmt.Fprintf(&b, "    volumeMounts:\n    - name: ktbench\n      mountPath: /ktbench\n  volumes:\n  - name: ktbench\n    hostPath:\n      path: %s\n      type: Directory\n", p.hostDir)
	}
	return b.String()
}

// startPods creates the namespace (if needed) and the pods, and waits
// until they are ready.
func startPods(ctx context.Context, ns string, pods []pod) error {
	if _, err := kubectl(ctx, "", "get", "namespace", ns); err != nil {
		if _, err := kubectl(ctx, "", "create", "namespace", ns); err != nil {
			return err
		}
	}
	var all strings.Builder
	for _, p := range pods {
		all.WriteString("---\n" + p.yaml(ns))
	}
	if _, err := kubectl(ctx, all.String(), "apply", "-f", "-"); err != nil {
		return err
	}
	for _, p := range pods {
		if _, err := kubectl(ctx, "", "-n", ns, "wait", "--for=condition=Ready", "--timeout=180s", "pod/"+p.name); err != nil {
			return err
		}
	}
	return nil
}

// deletePods deletes the benchmark's pods, without waiting.
func deletePods(ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := kubectl(ctx, "", "-n", ns, "delete", "pod", "-l", "ktbench=true", "--wait=false", "--grace-period=1"); err != nil {
		logf("cleanup: %v", err)
	}
}

// traceRun is one `kubectl trace` (or other command) run whose stdout and
// stderr lines are watched as they come.
type traceRun struct {
	cmd      *exec.Cmd
	start    time.Time
	mu       sync.Mutex
	stderr   []string
	firstOut time.Duration // command start to the first stdout line matching want
	attached time.Duration // to the plugin's "attached" line
	done     chan struct{}
}

// startCommand starts kubectl with args. Stdout goes to out (a file) when
// given, else it is read for the first line that contains want.
func startCommand(ctx context.Context, out io.Writer, want string, args ...string) (*traceRun, error) {
	r := &traceRun{done: make(chan struct{}), firstOut: -1, attached: -1}
	r.cmd = exec.CommandContext(ctx, "kubectl", args...)
	r.cmd.Cancel = func() error { return r.cmd.Process.Signal(os.Interrupt) }
	r.cmd.WaitDelay = 30 * time.Second
	var stdout io.Reader
	if out != nil {
		r.cmd.Stdout = out
	} else {
		p, err := r.cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		stdout = p
	}
	stderr, err := r.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	r.start = time.Now()
	if err := r.cmd.Start(); err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			l := sc.Text()
			r.mu.Lock()
			if r.attached < 0 && strings.Contains(l, "attached:") {
				r.attached = time.Since(r.start)
			}
			r.stderr = append(r.stderr, l)
			r.mu.Unlock()
		}
	}()
	if stdout != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			br := bufio.NewReaderSize(stdout, 1<<16)
			for {
				l, err := br.ReadString('\n')
				if strings.Contains(l, want) && strings.HasSuffix(l, "\n") {
					r.mu.Lock()
					if r.firstOut < 0 {
						r.firstOut = time.Since(r.start)
					}
					r.mu.Unlock()
				}
				if err != nil {
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(r.done) }()
	return r, nil
}

// wait waits for the command to end and its output to be read.
func (r *traceRun) wait() error {
	<-r.done
	return r.cmd.Wait()
}

func (r *traceRun) attachedAt() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attached
}

func (r *traceRun) stderrText() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.stderr, "\n")
}

// failure is why the command failed, for a table cell: its "error:" lines
// (the plugin's and kubectl's), else its last line. The first line is
// progress ("✓ 1 target(s) on 1 node(s)"): a cell that showed it hid why
// every end-to-end run of the eBPF hooks failed.
func (r *traceRun) failure() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []string
	for _, l := range r.stderr {
		if strings.HasPrefix(strings.TrimSpace(l), "error:") {
			errs = append(errs, strings.TrimSpace(l))
		}
	}
	if len(errs) > 0 {
		return strings.Join(errs, "; ")
	}
	for i := len(r.stderr) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(r.stderr[i]); l != "" {
			return l
		}
	}
	return "nothing on stderr"
}

// summaryRow returns the EVENTS and LOST columns of the plugin's summary
// table for target (namespace/pod/container).
func (r *traceRun) summaryRow(target string) (events, lost uint64, dur string, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.stderr {
		f := strings.Fields(l)
		if len(f) >= 5 && f[0] == target {
			_, err1 := fmt.Sscan(f[2], &events)
			_, err2 := fmt.Sscan(f[3], &lost)
			return events, lost, f[4], err1 == nil && err2 == nil
		}
	}
	return 0, 0, "", false
}

// hostDir makes a directory on the node (this machine) that pods mount:
// this binary, and run/ for the load's control files.
func hostDir() (string, error) {
	dir, err := os.MkdirTemp("", "ktbench-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(self)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "ktbench"), b, 0o755); err != nil {
		return "", err
	}
	return dir, os.Mkdir(filepath.Join(dir, "run"), 0o777)
}
