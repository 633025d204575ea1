package session

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDiagnose(t *testing.T) {
	stats := &wire.Status{Kind: wire.StatusStats, Events: 10}
	fromLog := &wire.Status{Kind: wire.StatusStats, Events: 11}
	exited := func(code int32, reason, msg string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "h", Namespace: "ns"}, Spec: corev1.PodSpec{NodeName: "n1"},
			Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "tracer",
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, Message: msg}}}}}}
	}
	running := &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "tracer",
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}}}
	ephemeralExited := &corev1.Pod{Spec: corev1.PodSpec{NodeName: "n1"}, Status: corev1.PodStatus{EphemeralContainerStatuses: []corev1.ContainerStatus{{Name: "tracer",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2, Message: "no tracefs"}}}}}}
	broke := errors.New("connection reset")
	tests := []struct {
		name      string
		e         ending
		wantStats *wire.Status
		wantErr   string
		wantsLog  bool
	}{
		{name: "clean: exit 0 with statistics", e: ending{stats: stats, stopSent: true, pod: exited(0, "", "")}, wantStats: stats},
		{name: "the helper's own errors come first", e: ending{helperErrs: []string{"no tracefs", "no BPF"}, stats: stats, pod: exited(1, "", "x")},
			wantStats: stats, wantErr: "tracing on node \"n1\": no tracefs; no BPF"},
		{name: "a corrupt stream", e: ending{readErr: errors.New("frame for unknown target 3"), stats: stats},
			wantStats: stats, wantErr: "reading the helper's output: frame for unknown target 3"},
		{name: "an ended stream is not a read error", e: ending{readErr: io.EOF, stats: stats, pod: exited(0, "", "")}, wantStats: stats},
		{name: "gave up after the stop", e: ending{gaveUp: true, stopSent: true}, wantErr: "gave up waiting for the helper after the stop request"},
		{name: "the helper pod deleted under it", e: ending{podGone: true, attachErr: broke}, wantErr: "the helper pod was deleted during the trace"},
		{name: "a failed exit", e: ending{pod: exited(1, "Error", "tracefs is not mounted\n")}, wantErr: `helper on node "n1" exited with code 1: tracefs is not mounted`},
		{name: "out of memory", e: ending{pod: exited(137, "OOMKilled", "")}, wantErr: "the helper ran out of memory (OOMKilled)"},
		{name: "an ephemeral container's exit", e: ending{pod: ephemeralExited}, wantErr: "exited with code 2: no tracefs"},
		{name: "statistics lost on the stream, found in the log", e: ending{stopSent: true, pod: exited(0, "", ""), logStats: fromLog},
			wantStats: fromLog, wantsLog: true},
		{name: "statistics in neither", e: ending{stopSent: true, pod: exited(0, "", "")}, wantsLog: true,
			wantErr: "the helper ended without final statistics: data may be incomplete"},
		{name: "a broken stream does not trust the log", e: ending{stopSent: true, attachErr: broke, pod: exited(0, "", ""), logStats: fromLog},
			wantErr: "without final statistics (the attach stream broke: connection reset)"},
		{name: "an exit we did not ask for does not trust the log", e: ending{pod: exited(0, "", ""), logStats: fromLog},
			wantErr: "the helper ended without final statistics"},
		{name: "the attach ended while the tracer runs", e: ending{attachErr: broke, stats: stats, pod: running},
			wantStats: stats, wantErr: "the attach stream ended: connection reset"},
		{name: "the stream ended early, pod unknown", e: ending{}, wantErr: "the stream ended before the helper reported final statistics"},
		{name: "pod unknown, statistics came", e: ending{stats: stats, stopSent: true}, wantStats: stats},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.e.container = "tracer"
			if tt.e.where == "" {
				tt.e.where = `tracing on node "n1"`
			}
			if got := tt.e.wantsLog(); got != tt.wantsLog {
				t.Errorf("wantsLog() = %v, want %v", got, tt.wantsLog)
			}
			gotStats, err := diagnose(tt.e)
			if diff := cmp.Diff(tt.wantStats, gotStats); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
			if got := fmt.Sprint(err); (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(got, tt.wantErr)) {
				t.Errorf("error = %v, want %q", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tt.e.where) {
				t.Errorf("error %q does not say where: %q", err, tt.e.where)
			}
		})
	}
}

func TestLastStats(t *testing.T) {
	first, _ := wire.EncodeControl(wire.Control{Stop: true})
	log := "tool output\n" + string(first) +
		`{"ktrace":"stats","events":3}` + "\n" + `{"ktrace":"warning","message":"x"}` + "\n" + `{"ktrace":"stats","events":4,"lost":1}` + "\n"
	got := lastStats([]byte(log))
	if got == nil || got.Events != 4 || got.Lost != 1 {
		t.Errorf("lastStats = %+v, want the last statistics line (4 events, 1 lost)", got)
	}
	if lastStats([]byte("no status here\n")) != nil {
		t.Error("found statistics in a log without any")
	}
}
