//go:build linux

// Command ktbench measures kubectl-trace's speed against baselines run side
// by side, in the same run, and prints tables of ratios (docs/performance.md):
//
//	ktbench overhead     per-syscall overhead of the hooks on a getppid (and
//	                     an open) loop, through the real helper (bin/tracer
//	                     with a request in KTRACE_REQUEST, tracing a fake
//	                     container), against untraced, bpftrace and strace
//	ktbench throughput   events/s delivered end to end by `kubectl trace …
//	                     -o json > file` from a pod generating events at
//	                     rising rates, with the losses the summary reports
//	ktbench firstevent   time from command start to the first event line of
//	                     `kubectl trace` (one pod, ten pods) against `kubectl
//	                     debug` reaching a running ephemeral container
//	ktbench all          the three, in that order
//
// overhead needs root and a kernel with BTF; throughput and firstevent
// need the local cluster (make cluster-up) with KUBECONFIG and PATH as
// `make e2e` sets them. Every part interleaves its methods round by round
// and reports medians with the spread (min-max): the machine is shared.
//
// The same binary is the load generator (ktbench load …): the overhead
// part runs it in a fake container, the cluster parts in a pod that
// mounts it from the node.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

func usage() {
	fmt.Fprint(os.Stderr, `usage: ktbench [flags] overhead|throughput|firstevent|all
       ktbench load …   (the load generator; see load.go)
flags:
`)
	flag.PrintDefaults()
}

// config is what every part reads from the command line.
type config struct {
	tracer   string // bin/tracer
	rounds   int    // interleaved rounds of the overhead part
	ttfRuns  int    // runs of each command of the firstevent part
	tputRuns int    // runs per rate of the throughput part
	quick    bool   // fewer iterations and rates: a smoke test of the harness
	out      string // also append the tables to this file
	ns       string // namespace of the cluster parts
	only     string // overhead: only the methods whose name contains this (and untraced); throughput: only those hooks
	rates    string // throughput: the rates to offer, instead of the default list
	// baseTracer, when set, runs every helper method of the overhead part
	// with this binary too, in the same rounds: before and after a change.
	baseTracer string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "load" {
		os.Exit(loadMain(os.Args[2:]))
	}
	var c config
	flag.StringVar(&c.tracer, "tracer", "bin/tracer", "the helper binary the overhead part runs")
	flag.IntVar(&c.rounds, "rounds", 5, "interleaved rounds of the overhead part")
	flag.IntVar(&c.ttfRuns, "ttf-runs", 7, "runs of each command in the firstevent part")
	flag.IntVar(&c.tputRuns, "tput-runs", 2, "runs of each hook and rate in the throughput part")
	flag.BoolVar(&c.quick, "quick", false, "fewer iterations, rounds and rates: checks the harness, not the product")
	flag.StringVar(&c.out, "out", "", "also write the result tables to this file (replaced)")
	flag.StringVar(&c.only, "only", "", "run only the methods (overhead, and untraced) or hooks (throughput) whose name contains this: syscall-top, bpftrace, ftrace, …")
	flag.StringVar(&c.baseTracer, "base-tracer", "", "overhead part: also run each helper method with this helper binary, interleaved (\"(base)\" in its name): compares two builds")
	flag.StringVar(&c.rates, "rates", "", "throughput part: comma-separated rates in calls/s to offer (0 is unpaced), e.g. 300000,0")
	flag.StringVar(&c.ns, "namespace", "ktbench", "namespace of the cluster parts' pods (created if missing; the pods are deleted at the end)")
	flag.Usage = usage
	flag.Parse()
	if flag.NArg() != 1 {
		usage()
		os.Exit(2)
	}
	if c.quick {
		c.rounds, c.ttfRuns, c.tputRuns = min(c.rounds, 2), min(c.ttfRuns, 2), 1
	}
	parts := map[string]func(config) (string, error){
		"overhead":   runOverhead,
		"throughput": runThroughput,
		"firstevent": runFirstEvent,
	}
	var names []string
	switch p := flag.Arg(0); p {
	case "all":
		names = []string{"overhead", "throughput", "firstevent"}
	case "overhead", "throughput", "firstevent":
		names = []string{p}
	default:
		usage()
		os.Exit(2)
	}
	head := fmt.Sprintf("ktbench %s, %s: %s; source %s; load average %s\n",
		strings.Join(names, ", "), time.Now().UTC().Format("2006-01-02 15:04 UTC"), machine(), source(), loadavg())
	fmt.Print(head)
	if c.out != "" {
		if err := os.WriteFile(c.out, []byte(head), 0o644); err != nil {
			logf("writing %s: %v", c.out, err)
		}
	}
	failed := false
	for _, n := range names {
		start := time.Now()
		logf("== %s", n)
		table, err := parts[n](c)
		if table != "" {
			fmt.Print(table)
			if c.out != "" {
				appendFile(c.out, table)
			}
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "ktbench %s: %v\n", n, err)
			failed = true
		}
		logf("== %s took %s", n, time.Since(start).Round(time.Second))
	}
	if failed {
		os.Exit(1)
	}
}

// logf reports progress on stderr; tables go to stdout.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05")+" "+format+"\n", args...)
}

// source names the commit measured, and says when the tree differs.
func source() string {
	rev, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown commit"
	}
	s := "commit " + strings.TrimSpace(string(rev))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		s += " with uncommitted changes"
	}
	return s
}

func appendFile(path, s string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		logf("writing %s: %v", path, err)
		return
	}
	defer f.Close()
	f.WriteString(s)
}
