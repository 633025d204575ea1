//go:build linux

package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The load generator: one thread making one kind of system call as fast as
// it can or at a given rate, timed inside the process (time.Now reads the
// vDSO clock: no system call), so start-up and tracer attach never count.
//
//	ktbench load -mode getppid|open -n N|-for D [-rate R]
//	    wait for a line on stdin, make N calls (or calls for D), print "ops=N ns=T cpu=C"
//	    (elapsed and the thread's CPU time, ns) and exit
//	ktbench load -serve DIR
//	    forever: wait for DIR/arm, read DIR/params ("mode rate seconds id"),
//	    remove arm; wait for DIR/go, remove it, make calls at rate for
//	    seconds, print "result id=ID mode=M ops=N secs=S" on stdout
//	    (DIR/cancel instead of go: back to waiting for arm).
//	    Arming reads the parameters before the trace starts, so the traced
//	    window holds no open(2) but the load's own; waiting stats DIR/go,
//	    which no hook of the benchmark sees.
//
// Modes: getppid is the cheapest system call there is (the overhead of a
// hook that looks at every system call shows best on it); open is
// openat(/dev/null) plus close, one event of the open hook per call.
func loadMain(args []string) int {
	fs := flag.NewFlagSet("ktbench load", flag.ContinueOnError)
	mode := fs.String("mode", "getppid", "getppid or open")
	n := fs.Int64("n", 1_000_000, "calls to make")
	rate := fs.Float64("rate", 0, "calls a second; 0 is as fast as possible")
	secs := fs.Duration("for", 0, "make calls for this long instead of n calls")
	serve := fs.String("serve", "", "serve runs armed through files in this directory")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	// One thread does the work: the kernel sees one task, and nothing of
	// the Go runtime's moves between threads lands in the timed loop.
	runtime.GOMAXPROCS(1)
	runtime.LockOSThread()
	if *serve != "" {
		return loadServe(*serve)
	}
	call, err := loadCall(*mode)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		fmt.Fprintln(os.Stderr, "ktbench load: no start line on stdin:", err)
		return 1
	}
	cpu0 := threadCPU()
	ops, d := loadLoop(call, *n, *rate, *secs)
	cpu := threadCPU() - cpu0
	fmt.Printf("ops=%d ns=%d cpu=%d\n", ops, d.Nanoseconds(), cpu.Nanoseconds())
	return 0
}

// loadCall returns the call a mode makes.
func loadCall(mode string) (func(), error) {
	switch mode {
	case "getppid":
		return func() { unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0) }, nil
	case "open":
		path, _ := unix.BytePtrFromString("/dev/null")
		p := uintptr(unsafe.Pointer(path))
		cwd := unix.AT_FDCWD
		return func() {
			fd, _, errno := unix.RawSyscall6(unix.SYS_OPENAT, uintptr(cwd), p, unix.O_RDONLY|unix.O_CLOEXEC, 0, 0, 0)
			if errno == 0 {
				unix.RawSyscall(unix.SYS_CLOSE, fd, 0, 0)
			}
			runtime.KeepAlive(path)
		}, nil
	}
	return nil, fmt.Errorf("ktbench load: unknown mode %q: want getppid or open", mode)
}

// loadLoop makes n calls (or calls for d when d > 0), at rate calls a
// second when rate > 0, and returns how many it made and how long it took.
// Pacing looks at the clock every 64 calls and spins until the next batch
// is due, as the research's sysloop.c does.
func loadLoop(call func(), n int64, rate float64, d time.Duration) (int64, time.Duration) {
	start := time.Now()
	var i int64
	for ; d > 0 || i < n; i++ {
		call()
		if i&63 == 63 {
			el := time.Since(start)
			if d > 0 && el >= d {
				i++
				break
			}
			if rate > 0 {
				due := time.Duration(float64(i+1) / rate * float64(time.Second))
				for time.Since(start) < due {
				}
			}
		}
	}
	return i, time.Since(start)
}

func loadServe(dir string) int {
	arm, params, goFile := filepath.Join(dir, "arm"), filepath.Join(dir, "params"), filepath.Join(dir, "go")
	fmt.Printf("ktbench load: serving %s, pid %d\n", dir, os.Getpid())
	for {
		waitFile(arm)
		b, err := os.ReadFile(params)
		os.Remove(arm)
		if err != nil {
			fmt.Println("error reading params:", err)
			continue
		}
		f := strings.Fields(string(b))
		if len(f) != 4 {
			fmt.Printf("error: params %q: want mode rate seconds id\n", b)
			continue
		}
		rate, _ := strconv.ParseFloat(f[1], 64)
		secs, _ := strconv.ParseFloat(f[2], 64)
		call, err := loadCall(f[0])
		if err != nil {
			fmt.Println("error:", err)
			continue
		}
		if waitEither(goFile, filepath.Join(dir, "cancel")) != goFile {
			os.Remove(filepath.Join(dir, "cancel"))
			fmt.Printf("cancelled id=%s\n", f[3])
			continue
		}
		os.Remove(goFile)
		ops, el := loadLoop(call, 0, rate, time.Duration(secs*float64(time.Second)))
		fmt.Printf("result id=%s mode=%s ops=%d secs=%.3f\n", f[3], f[0], ops, el.Seconds())
	}
}

// threadCPU is the CPU time of the calling thread, user and system: the
// time its calls took, whatever else ran on the machine meanwhile.
func threadCPU() time.Duration {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return time.Duration(ts.Nano())
}

// waitFile polls for path every millisecond (stat: no hook sees it).
func waitFile(path string) {
	waitEither(path, path)
}

// waitEither polls for a or b and returns the one that exists.
func waitEither(a, b string) string {
	var st unix.Stat_t
	for {
		for _, p := range []string{a, b} {
			if unix.Stat(p, &st) == nil {
				return p
			}
		}
		time.Sleep(time.Millisecond)
	}
}
