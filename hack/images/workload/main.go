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
	"syscall"
	"time"
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
	default:
		fmt.Fprintf(os.Stderr, "usage: %s [spin] | serve ADDR | child\n", name)
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
