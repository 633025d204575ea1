package hooks

import (
	"fmt"
	"sort"
	"strings"
)

// Output formats of the trace data on stdout, as a hook's Outputs name them.
const (
	OutputText = "text"
	OutputJSON = "json"
	// OutputPCAP is binary pcap, for hooks that capture packets.
	OutputPCAP = "pcap"
)

// Kinds of hook, which decide the runtime the helper dispatches to.
const (
	KindFtrace  = "ftrace"
	KindEBPF    = "ebpf"
	KindTcpdump = "tcpdump"
)

// Descriptor describes one hook. The plugin reads descriptors only: to
// validate flags, complete them, render `kubectl trace hooks` and derive the
// helper's privileges.
type Descriptor struct {
	Name    string
	Kind    string
	Summary string
	// Events lists the kernel events the hook enables.
	Events  []string
	Outputs []string
	// Params are the hook's `--arg key=value` parameters.
	Params []Param
	// Fields documents the keys of Event.Fields the hook fills in.
	Fields []Field
	Needs  Needs
	// NotNodeWide, when set, is why the hook cannot trace a whole node
	// (node/NAME): the plugin refuses it with this reason before it creates
	// anything. Empty: on a node, the hook traces every task.
	NotNodeWide string
	// View, when set, is how a terminal draws the hook's rows: a histogram
	// or a table instead of one line per row. Nil: lines.
	View *View
}

// CheckNodeWide returns an error saying why d cannot trace a whole node,
// and what to do instead; nil when it can.
func (d Descriptor) CheckNodeWide() error {
	if d.NotNodeWide == "" {
		return nil
	}
	var can []string
	for _, h := range Catalogue() {
		if h.NotNodeWide == "" {
			can = append(can, h.Name)
		}
	}
	return fmt.Errorf("hook %q cannot trace a whole node: %s; trace pods with it instead (pod/NAME, deploy/NAME or -l), or use one of %s on the node",
		d.Name, d.NotNodeWide, strings.Join(can, ", "))
}

// Param is one parameter of a hook.
type Param struct {
	Name    string
	Default string
	Help    string
	// Check rejects a bad value with a message that says what is allowed;
	// nil accepts any value.
	Check func(value string) error
}

// Field is one key of Event.Fields.
type Field struct {
	Name string
	Help string
}

// ResolveArgs validates the user's parameters against the descriptor and
// fills in the defaults. The plugin calls it before anything is created;
// the helper trusts its result.
func (d Descriptor) ResolveArgs(given map[string]string) (map[string]string, error) {
	known := map[string]Param{}
	var names []string
	for _, p := range d.Params {
		known[p.Name] = p
		names = append(names, p.Name)
	}
	out := map[string]string{}
	for _, p := range d.Params {
		if p.Default != "" {
			out[p.Name] = p.Default
		}
	}
	keys := make([]string, 0, len(given))
	for k := range given {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := given[k]
		p, ok := known[k]
		if !ok {
			if len(names) == 0 {
				return nil, fmt.Errorf("hook %q takes no parameters, but --arg %s was given", d.Name, k)
			}
			return nil, fmt.Errorf("hook %q has no parameter %q: it takes %s (see 'kubectl trace hooks %s')", d.Name, k, strings.Join(names, ", "), d.Name)
		}
		if p.Check != nil {
			if err := p.Check(v); err != nil {
				return nil, fmt.Errorf("--arg %s=%s for hook %q: %w", k, v, d.Name, err)
			}
		}
		out[k] = v
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// Needs is what the helper must be granted for the hook to work.
type Needs struct {
	Capabilities []string
	// Why says, for each of Capabilities, what the hook does with it
	// (docs/security.md's table is generated from it).
	Why map[string]string
	// HostPID: the helper must see the node's processes to find the target.
	HostPID bool
	// Kernel features, such as "tracefs".
	Kernel []string
}

// Capability is one Linux capability a hook needs, and why.
type Capability struct{ Name, Why string }

// needing returns n with caps added: each in Capabilities, its reason in
// Why, so that neither is written twice.
func needing(n Needs, caps ...Capability) Needs {
	n.Why = map[string]string{}
	for _, c := range caps {
		n.Capabilities = append(n.Capabilities, c.Name)
		n.Why[c.Name] = c.Why
	}
	return n
}

// catalogue is every hook; each kind keeps its descriptors in its own file.
var catalogue = concat(ftraceHooks, ebpfHooks, tcpdumpHooks)

func concat(lists ...[]Descriptor) []Descriptor {
	var out []Descriptor
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// Catalogue returns every hook, sorted by name.
func Catalogue() []Descriptor {
	out := append([]Descriptor(nil), catalogue...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup finds a hook by name.
func Lookup(name string) (Descriptor, bool) {
	for _, d := range catalogue {
		if d.Name == name {
			return d, true
		}
	}
	return Descriptor{}, false
}

// Names returns the hook names, sorted.
func Names() []string {
	var out []string
	for _, d := range Catalogue() {
		out = append(out, d.Name)
	}
	return out
}
