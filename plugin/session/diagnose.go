package session

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	corev1 "k8s.io/api/core/v1"
)

// ending is everything known about how a helper's stream ended, gathered
// by the stream (relay, decode, status, inspect) for diagnose.
type ending struct {
	// where names the helper in errors: "tracing ns/pod/c on node "n"".
	where string
	// helperErrs are the helper's own error lines.
	helperErrs []string
	// stats are the final statistics from the stream; nil when none came.
	stats *wire.Status
	// attachErr is how the attach ended; readErr how decoding did.
	attachErr, readErr error
	// stopSent: the plugin asked the helper to stop; gaveUp: and stopped
	// waiting for it after StopTimeout.
	stopSent, gaveUp bool
	// pod is the tracer's pod as the API server showed it afterwards (nil
	// when it could not be read); container is the tracer's container.
	pod       *corev1.Pod
	container string
	// podGone: the helper's own pod was not found afterwards.
	podGone bool
	// logStats are the final statistics found in the container's log,
	// read only when wantsLog says so.
	logStats *wire.Status
}

// diagnose says how a helper ended: its final statistics and nil, or what
// went wrong. The tracer's exit code is the truth; the stream's errors only
// matter when the tracer did not finish cleanly. It is pure.
func diagnose(e ending) (*wire.Status, error) {
	if err := e.failure(); err != nil {
		return e.stats, err
	}
	if t := terminated(e.pod, e.container); t != nil {
		if err := terminatedError(e.pod, t); err != nil {
			return e.stats, fmt.Errorf("%s: %w", e.where, err)
		}
		if e.wantsLog() && e.logStats != nil {
			return e.logStats, nil
		}
		if e.stats == nil {
			if e.attachErr != nil {
				return nil, fmt.Errorf("%s: the helper ended without final statistics (the attach stream broke: %v): data may be incomplete", e.where, e.attachErr)
			}
			return nil, fmt.Errorf("%s: the helper ended without final statistics: data may be incomplete", e.where)
		}
		return e.stats, nil
	}
	if e.attachErr != nil {
		return e.stats, fmt.Errorf("%s: the attach stream ended: %w", e.where, e.attachErr)
	}
	if e.stats == nil {
		return nil, fmt.Errorf("%s: the stream ended before the helper reported final statistics", e.where)
	}
	return e.stats, nil
}

// failure is what the helper or the stream said went wrong, before the
// tracer's exit is looked at.
func (e ending) failure() error {
	switch {
	case len(e.helperErrs) > 0:
		return fmt.Errorf("%s: %s", e.where, strings.Join(e.helperErrs, "; "))
	case e.readErr != nil && !errors.Is(e.readErr, io.EOF):
		return fmt.Errorf("%s: reading the helper's output: %w", e.where, e.readErr)
	case e.gaveUp:
		return fmt.Errorf("%s: gave up waiting for the helper after the stop request: the data ends early", e.where)
	case e.podGone:
		return fmt.Errorf("%s: the helper pod was deleted during the trace: the data may be incomplete", e.where)
	}
	return nil
}

// wantsLog says whether the final statistics are worth looking for in the
// container's log: the tracer exited cleanly after our own stop, and the
// attach stream ended before its last stderr line was through (a loaded
// node). Not after a stream that broke first: that lost data on the way.
func (e ending) wantsLog() bool {
	if e.stats != nil || !e.stopSent || e.attachErr != nil || e.failure() != nil {
		return false
	}
	t := terminated(e.pod, e.container)
	return t != nil && t.ExitCode == 0
}

// terminated returns how the container ended, or nil when it has not (or
// the pod is unknown).
func terminated(pod *corev1.Pod, container string) *corev1.ContainerStateTerminated {
	if pod == nil {
		return nil
	}
	for _, cs := range containerStatuses(pod) {
		if cs.Name == container && cs.State.Terminated != nil {
			return cs.State.Terminated
		}
	}
	return nil
}

// containerStatuses lists a pod's container and ephemeral container statuses.
func containerStatuses(pod *corev1.Pod) []corev1.ContainerStatus {
	return append(append([]corev1.ContainerStatus(nil), pod.Status.ContainerStatuses...), pod.Status.EphemeralContainerStatuses...)
}

// lastStats finds the last final-statistics line in a container's log.
func lastStats(log []byte) *wire.Status {
	var found *wire.Status
	for _, line := range bytes.Split(log, []byte{'\n'}) {
		if st, ok := wire.ParseStatus(line); ok && st.Kind == wire.StatusStats {
			found = &st
		}
	}
	return found
}
