//go:build !linux

package pidns

import "errors"

// Take needs Linux.
func Take(ns uint64) (*Snapshot, error) {
	return nil, errors.New("pid namespace translation needs Linux")
}
