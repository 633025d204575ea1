//go:build !linux

package runner

import (
	"errors"

	"github.com/ktrace-dev/kubectl-trace/hooks/attach"
)

// DefaultRuntimes returns the hook runtimes of this platform, by kind:
// none outside Linux.
func DefaultRuntimes() map[string]attach.Runtime { return map[string]attach.Runtime{} }

// selfTIDs needs Linux.
func selfTIDs() ([]int, error) { return nil, errors.New("the helper runs on Linux") }

// monotonicOffset needs Linux.
func monotonicOffset() (int64, error) { return 0, errors.New("the helper runs on Linux") }
