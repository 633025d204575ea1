//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ttfCommand is one command of the firstevent part.
type ttfCommand struct {
	name string
	args []string
	// want is what the first line that counts holds: an event, or the
	// ephemeral container's output.
	want string
}

func ttfCommands(ns string) []ttfCommand {
	return []ttfCommand{
		{name: "kubectl debug pod/one (baseline)", want: "ready",
			args: []string{"debug", "-n", ns, "pod/one", "-i", "--image=" + workloadImage, "--image-pull-policy=Never", "--target=app", "--", "sh", "-c", "echo ready"}},
		{name: "kubectl trace pod/one --hook sched", want: `"event":`,
			args: []string{"trace", "-n", ns, "pod/one", "--hook", "sched", "-o", "json", "--duration", "1s", "--color", "never"}},
		{name: "kubectl trace -l app=ten --hook sched (10 pods)", want: `"event":`,
			args: []string{"trace", "-n", ns, "-l", "app=ten", "--hook", "sched", "-o", "json", "--duration", "1s", "--color", "never"}},
		// The same mechanism as kubectl debug's: the closest comparison.
		{name: "kubectl trace pod/one --hook sched --mode ephemeral", want: `"event":`,
			args: []string{"trace", "-n", ns, "pod/one", "--hook", "sched", "--mode", "ephemeral", "-o", "json", "--duration", "1s", "--color", "never"}},
	}
}

func runFirstEvent(c config) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if err := checkCluster(ctx); err != nil {
		return "", err
	}
	spin := []string{"/usr/bin/ktalpha", "spin"}
	pods := []pod{{name: "one", labels: map[string]string{"app": "one"}, command: spin}}
	for i := range 10 {
		pods = append(pods, pod{name: fmt.Sprintf("ten-%d", i), labels: map[string]string{"app": "ten"}, command: spin})
	}
	logf("starting pod %s/one and 10 pods app=ten", c.ns)
	if err := startPods(ctx, c.ns, pods); err != nil {
		return "", err
	}
	defer deletePods(c.ns)

	cmds := ttfCommands(c.ns)
	results := make([]samples, len(cmds))
	failures := make([][]string, len(cmds))
	var errs []error
	for r := 0; r < c.ttfRuns; r++ {
		for k := range cmds {
			i := (k + r) % len(cmds)
			cm := cmds[i]
			d, total, err := ttfOnce(ctx, cm)
			if err != nil {
				logf("%s run %d: %v", cm.name, r+1, err)
				failures[i] = append(failures[i], firstLine(err.Error()))
				errs = append(errs, fmt.Errorf("%s: %w", cm.name, err))
				continue
			}
			logf("%-48s run %d: first line after %s (command took %s)", cm.name, r+1, d.Round(time.Millisecond), total.Round(time.Millisecond))
			results[i] = append(results[i], d.Seconds())
		}
	}
	return ttfTable(c, cmds, results, failures), errors.Join(errs...)
}

// ttfOnce runs one command and returns the time from its start to the
// first line that counts, and how long it ran.
func ttfOnce(ctx context.Context, cm ttfCommand) (time.Duration, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	r, err := startCommand(ctx, nil, cm.want, cm.args...)
	if err != nil {
		return 0, 0, err
	}
	werr := r.wait()
	total := time.Since(r.start)
	r.mu.Lock()
	first := r.firstOut
	r.mu.Unlock()
	if first < 0 {
		return 0, total, fmt.Errorf("no line with %q on stdout (%v): %s", cm.want, werr, r.stderrText())
	}
	if werr != nil {
		return 0, total, fmt.Errorf("%v after its first line: %s", werr, r.stderrText())
	}
	return first, total, nil
}

func ttfTable(c config, cmds []ttfCommand, results []samples, failures [][]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n### Time to first event\n\n")
	fmt.Fprintf(&b, "%d interleaved runs of each; seconds from the command's start to the first event line on stdout (kubectl trace, -o json) or to the ephemeral container's \"ready\" (kubectl debug -i … -- sh -c 'echo ready'); the target pods run /usr/bin/ktalpha spin; ratio = median / kubectl debug's median. Target: one pod within 1.3x of kubectl debug.\n\n", c.ttfRuns)
	base := results[0].median()
	var rows [][]string
	for i, cm := range cmds {
		s := results[i]
		fail := "-"
		if len(failures[i]) > 0 {
			fail = fmt.Sprintf("%d: %s", len(failures[i]), failures[i][0])
		}
		if len(s) == 0 {
			rows = append(rows, []string{cm.name, "failed", "", "", fail})
			continue
		}
		ratio := "-"
		if base > 0 {
			ratio = fmt.Sprintf("%.2f", s.median()/base)
		}
		rows = append(rows, []string{cm.name, fmt.Sprintf("%.2f", s.median()), s.spread("%.2f"), ratio, fail})
	}
	b.WriteString(table([]string{"command", "median s", "min–max s", "ratio to kubectl debug", "failed runs"}, rows))
	if base > 0 && len(results[1]) > 0 {
		r := results[1].median() / base
		v := "MET"
		if r > 1.3 {
			v = "MISSED"
		}
		fmt.Fprintf(&b, "\n- one pod: %.2fx kubectl debug: %s (target 1.3x)\n", r, v)
	}
	if base > 0 && len(results[3]) > 0 {
		fmt.Fprintf(&b, "- one pod, --mode ephemeral: %.2fx kubectl debug\n", results[3].median()/base)
	}
	if len(results[2]) == 0 {
		b.WriteString("- ten pods (-l app=ten): every run failed: see the failed runs column\n")
	}
	return b.String()
}
