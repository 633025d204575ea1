//go:build e2e

package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// complete runs cobra's completion entry point the way the shells and the
// kubectl_complete-trace shim do, and returns the offered words.
func complete(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("kubectl-trace", append([]string{"__complete", "-n", namespace}, args...)...).Output()
	if err != nil {
		t.Fatalf("kubectl-trace __complete %v: %v", args, err)
	}
	var words []string
	for _, line := range strings.Split(string(out), "\n") {
		if line == "" || strings.HasPrefix(line, ":") {
			continue
		}
		words = append(words, strings.SplitN(line, "\t", 2)[0])
	}
	return words
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestCompletionOffersTheClustersPodsContainersAndHooks(t *testing.T) {
	workloadPod(t, "complete-me", "ktalpha")
	if got := complete(t, ""); !contains(got, "pod/complete-me") || !contains(got, "hooks") {
		t.Errorf("completing the target: %v, want pod/complete-me and the subcommands", got)
	}
	if got := complete(t, "pod/complete-me", "-c", ""); !contains(got, "app") {
		t.Errorf("completing -c: %v, want the pod's container app", got)
	}
	if got := complete(t, "pod/complete-me", "--hook", ""); !contains(got, "sched") || !contains(got, "tcpdump") || !contains(got, "exec") {
		t.Errorf("completing --hook: %v, want the catalogue", got)
	}
	if got := complete(t, "pod/complete-me", "--hook", "tcpdump", "--arg", ""); !contains(got, "filter=") || !contains(got, "snaplen=") {
		t.Errorf("completing --arg for tcpdump: %v, want its parameters", got)
	}
	if got := complete(t, "hooks", ""); !contains(got, "runqlat") {
		t.Errorf("completing kubectl trace hooks: %v", got)
	}
	// The shim kubectl calls for `kubectl trace <TAB>`.
	out, err := exec.Command("kubectl", "__complete", "trace", "-n", namespace, "pod/complete").Output()
	if err != nil || !strings.Contains(string(out), "pod/complete-me") {
		t.Errorf("kubectl __complete trace (through kubectl_complete-trace): %v: %s", err, out)
	}
}
