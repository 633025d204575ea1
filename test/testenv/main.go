//go:build linux

package testenv

import (
	"fmt"
	"os"
)

// roleEnv names the role the test binary plays when the harness starts it
// again: a worker, a network peer, a child pid namespace's init or one of
// its workers.
const roleEnv = "KTRACE_TESTENV_ROLE"

// Main plays the role this process was started in by the harness (Start,
// StartPeer, NewPIDNamespace) and exits; in the test process itself it
// returns at once. Call it first, from an init function or TestMain of a
// package that starts any of them.
func Main() {
	role := os.Getenv(roleEnv)
	if role == "" {
		return
	}
	var err error
	code := 0
	switch role {
	case roleWorker:
		err = workerMain()
	case rolePeer:
		err = peerMain()
	case rolePIDInit:
		code = pidInitMain()
	case rolePIDWorker:
		pidWorkerMain()
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv %s: %v\n", role, err)
		code = 1
	}
	os.Exit(code)
}
