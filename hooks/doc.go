// Package hooks is the catalogue of trace hooks, held as data: what each
// hook is called, what it takes, what it writes and what it needs. The
// plugin reads descriptors only; the runtimes in the subpackages ftrace,
// ebpf and tcpdump carry them out. What travels between the plugin and the
// helper is package wire; what a runtime is given and returns, package
// attach.
//
// It is imported by both binaries, so it holds no Linux-only code.
package hooks
