// Package wire is the protocol between the plugin and the helper: the
// Request the plugin sends in KTRACE_REQUEST, the Status lines the helper
// reports on stderr, the frames and events it streams on stdout, and the
// Control lines the plugin sends on stdin after the go byte.
//
// It is imported by both binaries and by the in-cluster engine, so it holds
// no Linux-only code. What a hook is (its parameters, outputs and needs)
// is the catalogue's business, in package hooks.
package wire
