package session

import (
	"sort"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// execNeeds is what the helper of `kubectl trace exec` needs to run a tool
// in another container's namespaces (kubectl debug's netadmin profile, plus
// what nsenter needs).
var execNeeds = hooks.Needs{
	Capabilities: []string{
		// SYS_ADMIN: setns(2) into the target's namespaces (nsenter).
		"SYS_ADMIN",
		// SYS_PTRACE: open another process's /proc/PID/ns/* files.
		"SYS_PTRACE",
		// NET_ADMIN and NET_RAW: the network tools themselves (tcpdump's
		// packet socket, ip and tc changing links, routes and qdiscs).
		"NET_ADMIN", "NET_RAW",
	},
	// The target's namespaces are entered through its processes'
	// /proc/<pid>/ns/*: the node's PIDs.
	HostPID: true,
}

// securityContext derives the helper's security context from what the hook
// declares it needs: every capability dropped, then only the hook's added
// back. --privileged replaces all of it with a privileged container, for
// kernels or runtimes that need more than the hook knows.
func securityContext(needs hooks.Needs, privileged bool) *corev1.SecurityContext {
	if privileged {
		return &corev1.SecurityContext{Privileged: ptr.To(true)}
	}
	seen := map[string]bool{}
	var add []corev1.Capability
	for _, c := range needs.Capabilities {
		if !seen[c] {
			seen[c] = true
			add = append(add, corev1.Capability(c))
		}
	}
	sort.Slice(add, func(i, j int) bool { return add[i] < add[j] })
	return &corev1.SecurityContext{
		// The tracer opens root-owned tracefs, /proc and cgroup files.
		RunAsUser:    ptr.To(int64(0)),
		RunAsNonRoot: ptr.To(false),
		Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: add},
	}
}
