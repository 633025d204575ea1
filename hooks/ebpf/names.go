package ebpf

// Names of the hooks this package runs (hooks.Descriptor.Name).
const (
	HookExec       = "exec"
	HookOpen       = "open"
	HookTCP        = "tcp"
	HookSyscallTop = "syscall-top"
	HookRunqlat    = "runqlat"
	HookOOMKill    = "oomkill"
)

// Hooks lists the hooks this package runs.
var Hooks = []string{HookExec, HookOpen, HookTCP, HookSyscallTop, HookRunqlat, HookOOMKill}
