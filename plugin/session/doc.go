// Package session is the tracing engine: it runs one trace session
// against a cluster, from finding the targets to removing the last helper.
// It knows no command line and no terminal: package plugin turns flags
// into a Config and prints what the engine reports; a session run inside
// the cluster (detached, or from a schedule) builds the same Config from
// its record and keeps what the engine reports there.
//
// # The flow
//
//	cfg := session.Config{...}             // typed values only (plugin: TraceOptions.config)
//	s, err := session.New(cfg)
//	go func() { <-sigint; s.Interrupt() }() // first stop graceful, an interrupt after any stop hard
//	sum, err := s.Run(ctx)                  // cancelling ctx is a hard stop too
//
// Run goes through these steps, each in its own file:
//
//  1. targets.go: the Sources (a pod by name, a selector) or Nodes become
//     wire.Targets, one per container, checked to run.
//  2. plan.go: pure. The Mode groups the targets into helpers (NodeMode:
//     one helper pod per node; EphemeralMode: one ephemeral container per
//     target), and each Plan gets its wire.Request and its Helper spec
//     (spec.go, profile.go: least privilege from the hook's Needs).
//     Session.Plan stops here (--dry-run).
//  3. preflight.go: RBAC and Pod Security checks of every plan, before
//     anything is created; then the outputs are prepared (Preparer).
//  4. session.go: one stream per plan is started, the registry
//     (registry.go) keeps them, follow.go polls followed sources and adds
//     the pods that start to match (to their node's running helper when
//     the mode shares helpers) and removes those that go away; stop.go
//     stops the session (duration from the first data, every named target
//     ended, Stop, Interrupt).
//  5. stream.go: one helper's life. Create and wait (mode_*.go, wait.go,
//     podwatch.go), attach while the container starts (attach.go), the go
//     byte and control messages on stdin (control.go), stdout through
//     decode.go (inflate, then demux frames by target) to the outputs,
//     stderr through status.go to the Reporter; at a stop, the stop
//     message and StopTimeout; at the end, diagnose.go (pure) says how the
//     helper ended from what the stream saw and the pod's status; then the
//     helper is removed.
//  6. summary.go: a Summary per target and per helper, and the errors.
//
// # Where a caller plugs in
//
//   - Reporter (report.go): Notes (progress, warnings, tool lines), the
//     state of each target (found, joined, tracing, ended, left) and helper
//     (attached, ended), and Progress four times a second. The terminal
//     prints them; a session in the cluster can keep them in its record.
//   - Output (output.go): every output of Config.Outputs gets every
//     target's records, opened per target (a tee): stdout (package plugin),
//     DirOutput (one file per target), and whatever comes beside them, such
//     as a kept copy or an exporter. A writer that implements EventWriter
//     gets each JSON line decoded once, as wire.Events.
//   - Summary (summary.go): what Run returns instead of printing.
//   - Exec (exec.go): kubectl trace exec's engine, one holding helper pod
//     per node and the command run beside it in each target.
package session
