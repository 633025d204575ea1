package runner

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// nsenterFlags maps each of wire.ExecNamespaces to nsenter's flag.
var nsenterFlags = map[string]string{
	"net":    "--net",
	"pid":    "--pid",
	"uts":    "--uts",
	"ipc":    "--ipc",
	"mnt":    "--mount",
	"cgroup": "--cgroup",
}

// ExecArgv resolves the target on this node and returns the nsenter command
// line that runs argv in the target's namespaces. The tool comes from the
// tracer image unless the mount namespace is entered too.
func ExecArgv(procRoot string, t wire.Target, namespaces, argv []string) ([]string, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("no command to run in %s", t)
	}
	if len(namespaces) == 0 {
		return nil, fmt.Errorf("no namespace to enter for %s", t)
	}
	res, err := Resolve(procRoot, t)
	if err != nil {
		return nil, err
	}
	// The container's first process is its init: it lives as long as the
	// container and holds every namespace the container has.
	out := []string{"nsenter", "-t", strconv.Itoa(res.PIDs[0])}
	for _, ns := range namespaces {
		flag, ok := nsenterFlags[ns]
		if !ok {
			return nil, fmt.Errorf("unknown namespace %q: choose from %s", ns, strings.Join(wire.ExecNamespaces, ", "))
		}
		out = append(out, flag)
	}
	return append(append(out, "--"), argv...), nil
}
