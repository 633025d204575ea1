// Command workload is the target process of the end-to-end tests, image
// ktrace.local/workload:v1. The image links /usr/bin/ktalpha, ktbravo, ktdemo
// and ktnoise to it, so a pod started with one of those paths gets that name
// as its comm and tests can tell their targets from everything else.
//
//	NAME [spin]       wake every ~20 ms for a little CPU work; once a second
//	                  fork+exec a child of itself ("NAME child", exits at once)
//	                  so sched_process_fork/exec/exit happen; echo stdin lines
//	NAME serve ADDR   accept TCP connections on ADDR, answer "ok\n" and close
//	NAME child        exit at once
//
// Modes that exercise one hook each, looping until stopped:
//
//	NAME open PATH...    every 100 ms openat(AT_FDCWD, PATH, O_RDONLY|O_CLOEXEC)
//	                     each path (missing ones fail with ENOENT) and close;
//	                     prints each path's filename pointer, the address the
//	                     syscall tracepoints show
//	NAME connect ADDR    every 200 ms a TCP connection to ADDR, read the answer
//	                     and close
//	NAME syscalls CALL   getppid, getuid or getgid, 200 times every 10 ms
//	NAME burn N          N threads busy without a pause (N >= 1)
//	NAME alloc           allocate and touch 4 MiB every 20 ms and keep it, until
//	                     the memory limit kills the process
//	NAME io PATH         every 100 ms write 4 KiB with O_DIRECT at the next
//	                     offset of PATH (wrapping at 1 MiB), then fsync; prints
//	                     the file system's device as MAJOR:MINOR
//	NAME touch ADDR      every 100 ms map 64 fresh anonymous pages at the hex
//	                     address ADDR (MAP_FIXED_NOREPLACE), write each, unmap
//
// spin prints "got SIGUSR1" (or SIGUSR2, SIGHUP) when it receives one.
// It exits 0 on SIGTERM or SIGINT.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	tick          = 20 * time.Millisecond
	ticksPerChild = 50 // one child (and one status line) per second
)

func main() {
	name := filepath.Base(os.Args[0])
	mode := "spin"
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	if mode == "child" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	var err error
	switch {
	case mode == "spin" && len(os.Args) <= 2:
		err = spin(ctx, name)
	case mode == "serve" && len(os.Args) == 3:
		err = serve(ctx, name, os.Args[2])
	case mode == "open" && len(os.Args) >= 3:
		err = openLoop(ctx, name, os.Args[2:])
	case mode == "connect" && len(os.Args) == 3:
		err = connectLoop(ctx, name, os.Args[2])
	case mode == "syscalls" && len(os.Args) == 3:
		err = syscallLoop(ctx, name, os.Args[2])
	case mode == "burn" && len(os.Args) == 3:
		err = burn(ctx, name, os.Args[2])
	case mode == "alloc" && len(os.Args) == 2:
		err = alloc(ctx, name)
	case mode == "io" && len(os.Args) == 3:
		err = directIO(ctx, name, os.Args[2])
	case mode == "touch" && len(os.Args) == 3:
		err = touch(ctx, name, os.Args[2])
	default:
		fmt.Fprintf(os.Stderr, "usage: %s [spin] | serve ADDR | child | open PATH... | connect ADDR | syscalls getppid|getuid|getgid | burn N | alloc | io PATH | touch ADDR\n", name)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	fmt.Printf("%s: stopping\n", name)
}

// spin is the default mode: periodic CPU work plus one short child a second.
func spin(ctx context.Context, name string) error {
	self := selfPath()
	fmt.Printf("%s: pid %d spinning, children via %s\n", name, os.Getpid(), self)
	go echoStdin(name)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGHUP)
	go func() {
		for s := range sigs {
			fmt.Printf("%s: got %s\n", name, unix.SignalName(s.(syscall.Signal)))
		}
	}()

	t := time.NewTicker(tick)
	defer t.Stop()
	var sum [32]byte
	children := 0
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for range 64 { // a little CPU work, ~tens of microseconds
			sum = sha256.Sum256(sum[:])
		}
		if n%ticksPerChild != 0 {
			continue
		}
		// argv[0] is our own name, so the child's comm and cmdline match ours.
		child := &exec.Cmd{Path: self, Args: []string{name, "child"}}
		if err := child.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "%s: child: %v\n", name, err)
		} else {
			children++
		}
		fmt.Printf("%s: pid %d ticks %d children %d\n", name, os.Getpid(), n, children)
	}
}

// selfPath returns the path to exec for a child. The path we were started by
// (e.g. /usr/bin/ktalpha) keeps the child's comm equal to our name; exec of
// /proc/self/exe would give the child the comm "exe".
func selfPath() string {
	if p, err := exec.LookPath(os.Args[0]); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
	}
	return "/proc/self/exe"
}

// echoStdin copies stdin lines to stdout, so `kubectl attach -i` can be seen
// to work. It ends at EOF (stdin is /dev/null unless the pod sets stdin).
func echoStdin(name string) {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		fmt.Printf("%s: stdin: %s\n", name, sc.Text())
	}
}

// serve answers every TCP connection on addr with "ok\n".
func serve(ctx context.Context, name, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("%s: pid %d listening on %s\n", name, os.Getpid(), ln.Addr())
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprint(c, "ok\n")
		}()
	}
}

// every runs f every d until ctx ends or f fails.
func every(ctx context.Context, d time.Duration, f func() error) error {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		if err := f(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// openLoop opens each path read-only every 100 ms and closes it. The
// paths live in buffers allocated once, so the filename pointer a syscall
// tracepoint records is the same each time; it is printed.
func openLoop(ctx context.Context, name string, paths []string) error {
	bufs := make([][]byte, len(paths))
	for i, p := range paths {
		bufs[i] = append([]byte(p), 0)
		fmt.Printf("%s: open %s filename 0x%x\n", name, p, uintptr(unsafe.Pointer(&bufs[i][0])))
	}
	n, failed := 0, 0
	cwd := unix.AT_FDCWD
	return every(ctx, 100*time.Millisecond, func() error {
		for _, b := range bufs {
			fd, _, errno := unix.Syscall6(unix.SYS_OPENAT, uintptr(cwd), uintptr(unsafe.Pointer(&b[0])),
				uintptr(unix.O_RDONLY|unix.O_CLOEXEC), 0, 0, 0)
			runtime.KeepAlive(b)
			if errno != 0 {
				failed++
				continue
			}
			unix.Close(int(fd))
		}
		if n++; n%50 == 0 {
			fmt.Printf("%s: %d rounds of opens, %d failed\n", name, n, failed)
		}
		return nil
	})
}

// connectLoop connects to addr every 200 ms, reads the answer and closes.
func connectLoop(ctx context.Context, name, addr string) error {
	fmt.Printf("%s: pid %d connecting to %s\n", name, os.Getpid(), addr)
	n, failed := 0, 0
	return every(ctx, 200*time.Millisecond, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			failed++
		} else {
			c.SetDeadline(time.Now().Add(time.Second))
			var b [16]byte
			c.Read(b[:])
			c.Close()
		}
		if n++; n%25 == 0 {
			fmt.Printf("%s: %d connections, %d failed\n", name, n, failed)
		}
		return nil
	})
}

// syscallLoop makes one cheap syscall, 200 times every 10 ms.
func syscallLoop(ctx context.Context, name, call string) error {
	nr := map[string]uintptr{"getppid": unix.SYS_GETPPID, "getuid": unix.SYS_GETUID, "getgid": unix.SYS_GETGID}[call]
	if nr == 0 {
		return fmt.Errorf("syscalls: %q is not getppid, getuid or getgid", call)
	}
	fmt.Printf("%s: pid %d calling %s\n", name, os.Getpid(), call)
	return every(ctx, 10*time.Millisecond, func() error {
		for range 200 {
			unix.RawSyscall(nr, 0, 0, 0)
		}
		return nil
	})
}

// burn keeps n threads busy.
func burn(ctx context.Context, name, arg string) error {
	n, err := strconv.Atoi(arg)
	if err != nil || n < 1 {
		return fmt.Errorf("burn: want a number of threads >= 1, not %q", arg)
	}
	if runtime.GOMAXPROCS(0) < n+1 {
		runtime.GOMAXPROCS(n + 1)
	}
	fmt.Printf("%s: pid %d burning %d threads\n", name, os.Getpid(), n)
	for range n {
		go func() {
			runtime.LockOSThread()
			var sum [32]byte
			for ctx.Err() == nil {
				for range 1000 {
					sum = sha256.Sum256(sum[:])
				}
			}
		}()
	}
	<-ctx.Done()
	return nil
}

// sink keeps alloc's memory reachable.
var sink [][]byte

// alloc allocates 4 MiB every 20 ms, touches every page and keeps it.
func alloc(ctx context.Context, name string) error {
	fmt.Printf("%s: pid %d allocating\n", name, os.Getpid())
	return every(ctx, 20*time.Millisecond, func() error {
		b := make([]byte, 4<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		sink = append(sink, b)
		if len(sink)%8 == 0 {
			fmt.Printf("%s: %d MiB\n", name, 4*len(sink))
		}
		return nil
	})
}

// directIO writes 4 KiB with O_DIRECT at the next offset of path every
// 100 ms, then fsyncs.
func directIO(ctx context.Context, name, path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|unix.O_DIRECT, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	fmt.Printf("%s: pid %d writing %s on dev %d:%d\n", name, os.Getpid(), path, unix.Major(st.Dev), unix.Minor(st.Dev))
	// O_DIRECT wants an aligned buffer: a page of its own.
	buf, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return err
	}
	copy(buf, name)
	var off int64
	n, failed := 0, 0
	return every(ctx, 100*time.Millisecond, func() error {
		if _, err := f.WriteAt(buf, off); err != nil {
			failed++
			fmt.Fprintf(os.Stderr, "%s: write: %v\n", name, err)
		} else if err := f.Sync(); err != nil {
			failed++
			fmt.Fprintf(os.Stderr, "%s: fsync: %v\n", name, err)
		}
		off = (off + 4096) % (1 << 20)
		if n++; n%50 == 0 {
			fmt.Printf("%s: %d writes, %d failed\n", name, n, failed)
		}
		return nil
	})
}

// touch maps 64 fresh anonymous pages at addr every 100 ms, writes a byte
// to each (64 not-present write faults) and unmaps them.
func touch(ctx context.Context, name, arg string) error {
	addr, err := strconv.ParseUint(arg, 0, 64)
	if err != nil || addr%4096 != 0 {
		return fmt.Errorf("touch: want a page-aligned address such as 0x6b7400000000, not %q", arg)
	}
	const size = 64 * 4096
	fmt.Printf("%s: pid %d touching 0x%x-0x%x\n", name, os.Getpid(), addr, addr+size)
	n := 0
	return every(ctx, 100*time.Millisecond, func() error {
		p, _, errno := unix.Syscall6(unix.SYS_MMAP, uintptr(addr), size, unix.PROT_READ|unix.PROT_WRITE,
			unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED_NOREPLACE, ^uintptr(0), 0)
		if errno != 0 || p != uintptr(addr) {
			return fmt.Errorf("mmap at 0x%x: %v (got 0x%x)", addr, errno, p)
		}
		// p is memory outside Go's heap: reinterpret rather than convert
		// (go vet flags uintptr to unsafe.Pointer conversions).
		mem := unsafe.Slice(*(**byte)(unsafe.Pointer(&p)), size)
		for i := 0; i < size; i += 4096 {
			mem[i] = 1
		}
		unix.Syscall(unix.SYS_MUNMAP, p, size, 0)
		if n++; n%50 == 0 {
			fmt.Printf("%s: %d rounds of faults\n", name, n)
		}
		return nil
	})
}
