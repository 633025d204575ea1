package ftrace

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Lines as trace_pipe printed them on kernel 6.18 (testdata/sched_pipe.txt
// holds a whole capture), plus the shapes other configurations print.
func TestParseLine(t *testing.T) {
	tests := []struct {
		name string
		line string
		want Line
	}{
		{
			name: "sched_switch into the target",
			line: `            link-19430   [001] d..2.   429.674962: sched_switch: prev_comm=link prev_pid=19430 prev_prio=120 prev_state=R ==> next_comm=bash next_pid=19442 next_prio=120`,
			want: Line{Task: "link", TaskPID: 19430, CPU: 1, Time: 429.674962, Event: "sched_switch",
				Details: "prev_comm=link prev_pid=19430 prev_prio=120 prev_state=R ==> next_comm=bash next_pid=19442 next_prio=120"},
		},
		{
			name: "sched_wakeup from idle",
			line: `          <idle>-0       [001] dNs5.   429.676754: sched_wakeup: comm=sh pid=19444 prio=120 target_cpu=001`,
			want: Line{Task: "<idle>", TaskPID: 0, CPU: 1, Time: 429.676754, Event: "sched_wakeup",
				Details: "comm=sh pid=19444 prio=120 target_cpu=001"},
		},
		{
			name: "sched_migrate_task",
			line: `           sleep-19444   [001] dN.2.   429.676620: sched_migrate_task: comm=link pid=19427 prio=120 orig_cpu=0 dest_cpu=1`,
			want: Line{Task: "sleep", TaskPID: 19444, CPU: 1, Time: 429.676620, Event: "sched_migrate_task",
				Details: "comm=link pid=19427 prio=120 orig_cpu=0 dest_cpu=1"},
		},
		{
			name: "sched_process_fork",
			line: `              sh-19442   [001] .....   429.675845: sched_process_fork: comm=sh pid=19442 child_comm=sh child_pid=19444`,
			want: Line{Task: "sh", TaskPID: 19442, CPU: 1, Time: 429.675845, Event: "sched_process_fork",
				Details: "comm=sh pid=19442 child_comm=sh child_pid=19444"},
		},
		{
			name: "sched_process_exec",
			line: `            true-19445   [001] .....   429.979938: sched_process_exec: filename=/bin/true pid=19445 old_pid=19445`,
			want: Line{Task: "true", TaskPID: 19445, CPU: 1, Time: 429.979938, Event: "sched_process_exec",
				Details: "filename=/bin/true pid=19445 old_pid=19445"},
		},
		{
			name: "sched_process_exit",
			line: `            true-19445   [001] .....   429.980389: sched_process_exit: comm=true pid=19445 prio=120 group_dead=true`,
			want: Line{Task: "true", TaskPID: 19445, CPU: 1, Time: 429.980389, Event: "sched_process_exit",
				Details: "comm=true pid=19445 prio=120 group_dead=true"},
		},
		{
			name: "comm not in saved_cmdlines",
			line: `           <...>-31337   [000] d..2.  1200.000001: sched_switch: prev_comm=worker prev_pid=31337 prev_prio=120 prev_state=S ==> next_comm=swapper/0 next_pid=0 next_prio=120`,
			want: Line{Task: "<...>", TaskPID: 31337, CPU: 0, Time: 1200.000001, Event: "sched_switch",
				Details: "prev_comm=worker prev_pid=31337 prev_prio=120 prev_state=S ==> next_comm=swapper/0 next_pid=0 next_prio=120"},
		},
		{
			name: "comm with spaces, dashes and brackets",
			line: `  Web Con-t [1]-77 [003] ....1    12.500000: sched_process_exit: comm=Web Con-t [1] pid=77 prio=120 group_dead=false`,
			want: Line{Task: "Web Con-t [1]", TaskPID: 77, CPU: 3, Time: 12.5, Event: "sched_process_exit",
				Details: "comm=Web Con-t [1] pid=77 prio=120 group_dead=false"},
		},
		{
			name: "irq-info off",
			line: `              sh-19442   [001]   429.675845: sched_process_fork: comm=sh pid=19442 child_comm=sh child_pid=19444`,
			want: Line{Task: "sh", TaskPID: 19442, CPU: 1, Time: 429.675845, Event: "sched_process_fork",
				Details: "comm=sh pid=19442 child_comm=sh child_pid=19444"},
		},
		{
			name: "cpu above 999",
			line: `              sh-5   [1024] d..2. 3.000000: sched_wakeup: comm=sh pid=5 prio=120 target_cpu=1024`,
			want: Line{Task: "sh", TaskPID: 5, CPU: 1024, Time: 3, Event: "sched_wakeup",
				Details: "comm=sh pid=5 prio=120 target_cpu=1024"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseLine(tt.line)
			if err != nil {
				t.Fatalf("ParseLine: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseLine mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseLineErrors(t *testing.T) {
	tests := []struct {
		name     string
		line     string
		wantLost *LostError
	}{
		{name: "lost events", line: "CPU:1 [LOST 123 EVENTS]", wantLost: &LostError{CPU: 1, Count: 123}},
		{name: "no columns", line: "hello world"},
		{name: "no timestamp", line: "  sh-1 [000] d..2. soon: sched_switch: x=1"},
		{name: "no event", line: "  sh-1 [000] d..2. 1.000000:"},
		{name: "bad lost line", line: "CPU:x [LOST many EVENTS]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseLine(tt.line)
			if err == nil {
				t.Fatal("ParseLine: no error")
			}
			var lost *LostError
			if errors.As(err, &lost) != (tt.wantLost != nil) {
				t.Fatalf("ParseLine error %v: LostError is %v, want %v", err, lost != nil, tt.wantLost != nil)
			}
			if tt.wantLost != nil {
				if diff := cmp.Diff(tt.wantLost, lost); diff != "" {
					t.Errorf("LostError mismatch (-want +got):\n%s", diff)
				}
				if !errors.Is(err, ErrLost) {
					t.Errorf("errors.Is(%v, ErrLost) = false", err)
				}
			}
		})
	}
}

func TestFields(t *testing.T) {
	tests := []struct {
		name    string
		details string
		want    map[string]string
	}{
		{
			name:    "sched_switch drops the arrow",
			details: "prev_comm=sh prev_pid=19442 prev_prio=120 prev_state=R+ ==> next_comm=swapper/1 next_pid=0 next_prio=120",
			want: map[string]string{"prev_comm": "sh", "prev_pid": "19442", "prev_prio": "120", "prev_state": "R+",
				"next_comm": "swapper/1", "next_pid": "0", "next_prio": "120"},
		},
		{
			name:    "sched_wakeup",
			details: "comm=sh pid=19444 prio=120 target_cpu=001",
			want:    map[string]string{"comm": "sh", "pid": "19444", "prio": "120", "target_cpu": "001"},
		},
		{
			name:    "sched_migrate_task",
			details: "comm=link pid=19427 prio=120 orig_cpu=0 dest_cpu=1",
			want:    map[string]string{"comm": "link", "pid": "19427", "prio": "120", "orig_cpu": "0", "dest_cpu": "1"},
		},
		{
			name:    "sched_process_fork",
			details: "comm=sh pid=19442 child_comm=sh child_pid=19444",
			want:    map[string]string{"comm": "sh", "pid": "19442", "child_comm": "sh", "child_pid": "19444"},
		},
		{
			name:    "sched_process_exec with a space in the file name",
			details: "filename=/opt/my app/run pid=19445 old_pid=19445",
			want:    map[string]string{"filename": "/opt/my app/run", "pid": "19445", "old_pid": "19445"},
		},
		{
			name:    "sched_process_exit with a space in the comm",
			details: "comm=Web Content pid=77 prio=120 group_dead=true",
			want:    map[string]string{"comm": "Web Content", "pid": "77", "prio": "120", "group_dead": "true"},
		},
		{
			name:    "empty value",
			details: "comm= pid=1",
			want:    map[string]string{"comm": "", "pid": "1"},
		},
		{
			name:    "no fields",
			details: "",
			want:    nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Fields(tt.details)); diff != "" {
				t.Errorf("Fields(%q) mismatch (-want +got):\n%s", tt.details, diff)
			}
		})
	}
}

func BenchmarkParseAndAttribute(b *testing.B) {
	line := `              sh-19442   [001] d..2.   429.676841: sched_switch: prev_comm=sh prev_pid=19442 prev_prio=120 prev_state=S ==> next_comm=swapper/1 next_pid=0 next_prio=120`
	tr := newTracker()
	tr.add(0, []int{19442}, nil)
	b.ReportAllocs()
	for b.Loop() {
		l, err := ParseLine(line)
		if err != nil {
			b.Fatal(err)
		}
		if _, ok := tr.attribute(&l); !ok {
			b.Fatal("not attributed")
		}
	}
}
