//go:build linux

// Package prog is what an eBPF hook's folder gives the runtime (package
// ebpf): its Def, which says how its program is loaded and how what it
// hands to user space (ring buffer records, or sums in per-CPU maps)
// becomes events, and the Record those events are built from. A folder
// holds one program: its C source (with the shared headers of ../include),
// the one-line gen.go that compiles it with bpf2go, the committed output,
// and the Go that decodes it.
package prog

import (
	"fmt"
	"time"

	"github.com/cilium/ebpf"
)

// Def is one eBPF hook's program.
type Def struct {
	// Name is the hook's (hooks.Descriptor.Name).
	Name string
	// Load returns the program's collection spec (bpf2go's loadBpf).
	Load func() (*ebpf.CollectionSpec, error)
	// Events, for a hook that hands each event to user space in the ring
	// buffer "events", returns a new decoder of its records, one per
	// session.
	Events func() Decoder
	// Sums, for a hook that sums in the kernel, returns a new reader of
	// the sums for the hook's arguments, one per session.
	Sums func(args map[string]string) (Sums, error)
	// Sized, when set, is the map whose size is Slots per target, set
	// before load for the targets a session may have.
	Sized string
	Slots int
	// Programs, when set, names the programs to load for the arguments;
	// the others are left out.
	Programs func(args map[string]string) ([]string, error)
}

// Decoder fills rec from one ring buffer record and returns its header
// and the event's name; ok false drops the record (too short, or of a
// kind it does not know).
type Decoder func(raw []byte, rec *Record) (h Header, event string, ok bool)

// Sums reads the per-target sums of a hook that sums in the kernel.
type Sums interface {
	// Interval is how often rows are emitted; 0 only at the end.
	Interval() time.Duration
	// Flush emits the rows summed since the previous flush of the
	// targets 0 to targets-1, with rec reused between rows.
	Flush(c *ebpf.Collection, targets int, emit func(target int, event string, rec *Record) error) error
}

// Interval reads the interval parameter of a hook that sums: a duration
// >= 0 (0: only at the end), absent 0. The plugin checked it
// (hooks.Descriptor.ResolveArgs).
func Interval(args map[string]string) (time.Duration, error) {
	v, ok := args["interval"]
	if !ok {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("interval %q is not a duration >= 0 such as 1s", v)
	}
	return d, nil
}
