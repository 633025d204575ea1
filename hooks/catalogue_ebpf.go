package hooks

// ebpfHooks are loaded with cilium/ebpf and filter in the kernel (package ebpf).
var ebpfHooks = []Descriptor{}
