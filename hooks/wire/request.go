package wire

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ktrace-dev/kubectl-trace/hooks"
)

// ProtocolVersion changes whenever Request, Status or Event change in a way
// an older helper would misread; the helper refuses a version it does not know.
const ProtocolVersion = 1

// RequestEnv is the environment variable that carries the encoded Request
// into the helper container.
const RequestEnv = "KTRACE_REQUEST"

// Helper modes.
const (
	// ModeNode: a helper pod on the target's node, in the host PID
	// namespace; PIDs are the node's.
	ModeNode = "node"
	// ModeEphemeral: an ephemeral container in the target pod, sharing the
	// target's PID namespace; PIDs in /proc are the pod's and must be
	// translated for the kernel's filters.
	ModeEphemeral = "ephemeral"
)

// Request is everything the helper needs to run one trace session. It is
// built once by the plugin, from flags already parsed and validated there, so
// no flag is parsed twice.
type Request struct {
	Version   int               `json:"version"`
	SessionID string            `json:"sessionID"`
	Hook      string            `json:"hook"`
	Args      map[string]string `json:"args,omitempty"`
	Output    string            `json:"output"`
	Targets   []Target          `json:"targets"`
	// Mode is where the helper runs: ModeNode (default) or ModeEphemeral.
	Mode string `json:"mode,omitempty"`
	// Framed asks for stdout as frames (see WriteFrame) so the plugin can
	// tell the targets apart; the plugin sets it for several targets or
	// --output-dir.
	Framed bool `json:"framed,omitempty"`
	// Compress asks for stdout as one DEFLATE stream (RFC 1951,
	// compress/flate), sync-flushed whenever the helper flushes, so that
	// nothing waits in the compressor. The attach stream (runtime, kubelet,
	// API server) is the limit of a busy trace, and JSON events shrink
	// about tenfold. Frames, when Framed, are inside the stream. An older
	// helper refuses the request (an unknown field) rather than misread it.
	Compress bool `json:"compress,omitempty"`
	// Text asks that JSON events carry the line text output would show
	// (Event.Text), so that one JSON stream serves both a body to export
	// and the views drawn from the fields. An older helper refuses the
	// request (an unknown field) rather than misread it.
	Text bool `json:"text,omitempty"`
	// MaxEvents stops the session after this many events; 0 is no limit.
	MaxEvents int64 `json:"maxEvents,omitempty"`
	// MaxBytes stops the session after this much trace data on stdout
	// (whole records only, so a pcap stays readable); 0 is no limit.
	MaxBytes int64 `json:"maxBytes,omitempty"`
}

// Target kinds (Target.Kind).
const (
	// TargetContainer, the default (""), is one container of a pod.
	TargetContainer = ""
	// TargetNode is a whole node: every task on the node's kernel, not a
	// container. The helper resolves it without looking for processes, and
	// its events name the node only (Namespace, Pod and Container empty).
	TargetNode = "node"
)

// Target is one container to trace, as the API server describes it, or a
// whole node (Kind TargetNode, with Node set and nothing else).
type Target struct {
	// Kind is TargetContainer ("") or TargetNode.
	Kind      string `json:"kind,omitempty"`
	Node      string `json:"node"`
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	PodUID    string `json:"podUID"`
	Container string `json:"container"`
	// ContainerID is the pod status' value, with the runtime scheme:
	// "containerd://<64 hex>", "cri-o://…" or "docker://…".
	ContainerID string `json:"containerID"`
}

// String names the target the way kubectl users read it: namespace/pod/
// container, or node/NAME.
func (t Target) String() string {
	if t.IsNode() {
		return "node/" + t.Node
	}
	return t.Namespace + "/" + t.Pod + "/" + t.Container
}

// IsNode says whether t is a whole node.
func (t Target) IsNode() bool { return t.Kind == TargetNode }

// Label is how merged output prefixes t's lines: pod/container, or
// node/NAME.
func (t Target) Label() string {
	if t.IsNode() {
		return "node/" + t.Node
	}
	return t.Pod + "/" + t.Container
}

// FileName is the base name (without extension) of t's --output-dir file:
// namespace_pod_container, or node_NAME.
func (t Target) FileName() string {
	if t.IsNode() {
		return "node_" + t.Node
	}
	return t.Namespace + "_" + t.Pod + "_" + t.Container
}

// RuntimeID returns the container ID without its runtime scheme.
func (t Target) RuntimeID() string {
	if i := strings.Index(t.ContainerID, "://"); i >= 0 {
		return t.ContainerID[i+3:]
	}
	return t.ContainerID
}

// Validate checks what the helper relies on; the plugin calls it before it
// creates anything and the helper again after decoding.
func (r Request) Validate() error {
	var errs []error
	if r.Version != ProtocolVersion {
		errs = append(errs, fmt.Errorf("protocol version %d is not %d: use a plugin and tracer image of the same release", r.Version, ProtocolVersion))
	}
	if r.SessionID == "" {
		errs = append(errs, errors.New("session id is empty"))
	}
	if _, ok := hooks.Lookup(r.Hook); !ok {
		errs = append(errs, fmt.Errorf("unknown hook %q", r.Hook))
	}
	if d, ok := hooks.Lookup(r.Hook); ok && !slices.Contains(d.Outputs, r.Output) {
		errs = append(errs, fmt.Errorf("hook %q cannot write output %q", r.Hook, r.Output))
	}
	if r.Mode != "" && r.Mode != ModeNode && r.Mode != ModeEphemeral {
		errs = append(errs, fmt.Errorf("unknown mode %q", r.Mode))
	}
	if r.MaxEvents < 0 || r.MaxBytes < 0 {
		errs = append(errs, errors.New("limits must not be negative"))
	}
	if len(r.Targets) == 0 {
		errs = append(errs, errors.New("no targets"))
	}
	nodes := 0
	for i, t := range r.Targets {
		switch t.Kind {
		case TargetContainer:
			if len(t.RuntimeID()) < 12 {
				errs = append(errs, fmt.Errorf("target %d (%s): container id %q is too short to match", i, t, t.ContainerID))
			}
		case TargetNode:
			nodes++
			errs = append(errs, validNodeTarget(r, i, t)...)
		default:
			errs = append(errs, fmt.Errorf("target %d: unknown kind %q: want %q or none", i, t.Kind, TargetNode))
		}
	}
	if nodes > 0 && len(r.Targets) > 1 {
		// A whole node already holds every container on it; one helper
		// traces one node.
		errs = append(errs, errors.New("a whole node is the only target of its request: trace node/NAME or pods, not both, and one node per helper"))
	}
	return errors.Join(errs...)
}

// validNodeTarget checks a whole-node target of r.
func validNodeTarget(r Request, i int, t Target) []error {
	var errs []error
	if t.Node == "" {
		errs = append(errs, fmt.Errorf("target %d: a whole-node target needs the node's name", i))
	}
	if t.Namespace != "" || t.Pod != "" || t.PodUID != "" || t.Container != "" || t.ContainerID != "" {
		errs = append(errs, fmt.Errorf("target %d (%s): a whole-node target names no pod or container", i, t))
	}
	if r.Mode == ModeEphemeral {
		errs = append(errs, fmt.Errorf("target %d (%s): a whole node cannot be traced from an ephemeral container, which lives in one pod: use --mode node", i, t))
	}
	if d, ok := hooks.Lookup(r.Hook); ok {
		if err := d.CheckNodeWide(); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// Encode returns the request as one environment-safe string.
func (r Request) Encode() (string, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("encoding request: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// DecodeRequest reverses Encode and validates the result.
func DecodeRequest(s string) (Request, error) {
	var r Request
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return r, fmt.Errorf("decoding request: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("decoding request: %w", err)
	}
	if err := r.Validate(); err != nil {
		return r, fmt.Errorf("invalid request: %w", err)
	}
	return r, nil
}
