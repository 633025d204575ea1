package session

import (
	"context"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"k8s.io/client-go/kubernetes"
)

// Mode is where a session's tracers run, and everything that differs
// between the places, in one strategy (kubectl debug's debug styles):
// NodeMode, a helper pod per node, or EphemeralMode, an ephemeral container
// in each target pod. The set is closed: the methods are the engine's.
type Mode interface {
	// name is the request's mode, wire.ModeNode or wire.ModeEphemeral.
	name() string
	// group splits the targets into the sets that one helper traces each.
	group(targets []wire.Target) [][]wire.Target
	// build returns the helper for one set; it is pure.
	build(spec helperSpec) Helper
	// shared says whether a target that joins while the session runs is
	// added to the running helper of its node, instead of a helper of its
	// own.
	shared() bool
	// notice is said once before the first helper starts; "" for none.
	notice(id string) string
}

// helperSpec is what a mode builds a helper from.
type helperSpec struct {
	name       string
	node       string
	targets    []wire.Target
	request    wire.Request
	encoded    string
	image      string
	needs      hooks.Needs
	privileged bool
	deadline   time.Duration
}

// Helper is one tracer that a Mode built: a *PodHelper or an
// *EphemeralHelper. Its lifecycle is the engine's.
type Helper interface {
	// DryRun is what --dry-run prints: the object to create, and a comment
	// saying where it goes ("" when the object says so itself).
	DryRun() (comment string, object any)

	// preflight checks what can fail before the helper is created; checked
	// holds the namespaces whose rights were checked already.
	preflight(ctx context.Context, client kubernetes.Interface, checked map[string]bool) error
	// create creates it, for that many targets.
	create(ctx context.Context, client kubernetes.Interface, r report, targets int) error
	// waitStarted returns when the tracer's container runs, or never will.
	waitStarted(ctx context.Context, client kubernetes.Interface, timeout time.Duration, r report) error
	// attachRef names the tracer's container.
	attachRef() (namespace, pod, container string)
	// remove deletes what create made, if it can be; released says the
	// tracer holds nothing in the kernel any more.
	remove(client kubernetes.Interface, released bool) error
	// ownsPod says whether the pod is the helper's own: one that vanished
	// was deleted under it.
	ownsPod() bool
}
