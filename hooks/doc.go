// Package hooks is the catalogue of trace hooks, held as data, and the
// contract between the plugin and the helper: the Request the plugin sends,
// the Status lines the helper reports on stderr, and the Event it streams
// on stdout as JSON.
//
// It is imported by both binaries, so it holds no Linux-only code; the
// runtimes live in the subpackages ftrace, ebpf and tcpdump.
package hooks
