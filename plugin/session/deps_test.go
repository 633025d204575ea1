package session

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestEngineNeverSeesCobra: the engine also runs without a command line or
// a terminal (in the cluster, for a detached session): nothing it depends
// on parses flags, and it reads no kubeconfig, no signal and no terminal
// itself (client-go, below it, may).
func TestEngineNeverSeesCobra(t *testing.T) {
	for _, d := range goList(t, "-deps") {
		if strings.HasPrefix(d, "github.com/spf13/cobra") || strings.HasPrefix(d, "github.com/spf13/pflag") {
			t.Errorf("plugin/session depends on %s", d)
		}
	}
	for _, d := range goList(t, "-f", "{{join .Imports \"\\n\"}}") {
		for _, bad := range []string{"k8s.io/cli-runtime", "k8s.io/client-go/tools/clientcmd", "os/signal", "golang.org/x/term", "github.com/charmbracelet", "github.com/muesli"} {
			if strings.HasPrefix(d, bad) {
				t.Errorf("plugin/session imports %s", d)
			}
		}
	}
}

// goList runs go list with args on this package.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command(goTool(t), append(append([]string{"list"}, args...), ".")...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	pkgs := strings.Fields(string(out))
	if len(pkgs) < 10 {
		t.Fatalf("go list %s listed %d packages: %q", strings.Join(args, " "), len(pkgs), out)
	}
	return pkgs
}

// goTool is the go command that runs this test.
func goTool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}
