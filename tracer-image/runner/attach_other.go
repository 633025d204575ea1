//go:build !linux

package runner

// DefaultAttachers returns the hook runtimes of this platform, by kind:
// none outside Linux.
func DefaultAttachers() map[string]Attacher {
	return map[string]Attacher{}
}
