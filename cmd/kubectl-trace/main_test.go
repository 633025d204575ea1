package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const module = "github.com/ktrace-dev/kubectl-trace"

// linuxOnly are the packages that only the tracer may pull in: the Linux
// runtimes and what they stand on.
var linuxOnly = []string{
	"github.com/cilium/ebpf",
	module + "/hooks/ftrace",
	module + "/hooks/ebpf",
	module + "/hooks/tcpdump",
	module + "/tracer-image",
}

// TestPluginBuildsEverywhere: the plugin runs on the user's machine, macOS
// and Windows too, so neither build of it may depend on Linux-only code.
func TestPluginBuildsEverywhere(t *testing.T) {
	for _, goos := range []string{"darwin", "windows"} {
		t.Run(goos, func(t *testing.T) {
			cmd := exec.Command(goTool(), "list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", ".")
			cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64", "CGO_ENABLED=0")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("go list -deps for GOOS=%s: %v\n%s", goos, err, out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) < 50 {
				t.Fatalf("go list -deps listed %d packages for GOOS=%s", len(lines), goos)
			}
			ours := 0
			for _, line := range lines {
				pkg, imports, _ := strings.Cut(line, " ")
				for _, bad := range linuxOnly {
					if pkg == bad || strings.HasPrefix(pkg, bad+"/") {
						t.Errorf("GOOS=%s: the plugin depends on %s", goos, pkg)
					}
				}
				if !strings.HasPrefix(pkg, module) {
					continue
				}
				ours++
				// x/sys/unix is fine below a library that has its own
				// build of it; a package of ours must not need it.
				for _, imp := range strings.Fields(imports) {
					if imp == "golang.org/x/sys/unix" {
						t.Errorf("GOOS=%s: %s imports golang.org/x/sys/unix", goos, pkg)
					}
				}
			}
			if ours < 3 {
				t.Errorf("GOOS=%s: only %d packages of this module in the plugin's dependencies", goos, ours)
			}
		})
	}
}

// goTool is the go command that runs this test.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}
