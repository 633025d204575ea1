//go:build linux

package testenv

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	rolePeer   = "peer"
	envPort    = "KTRACE_TESTENV_PORT"
	envPayload = "KTRACE_TESTENV_PAYLOAD"
)

// Peer is a network peer: a process in a network namespace of its own
// that connects over loopback to a port of its own every 20 ms and sends
// a payload, so that a capture shows whose traffic it holds.
type Peer struct {
	Cmd     *exec.Cmd
	Port    int
	Payload string
}

// PID is the peer's process id.
func (p *Peer) PID() int { return p.Cmd.Process.Pid }

// StartPeer starts a peer in a new network namespace (plus cloneflags) and
// returns once it sends; the test's cleanup ends it.
func StartPeer(t testing.TB, port int, payload string, cloneflags uintptr) *Peer {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), roleEnv+"="+rolePeer, envPort+"="+strconv.Itoa(port), envPayload+"="+payload)
	// No Pdeathsig: it follows the thread that forks, and a test's thread
	// may end (a goroutine that locked it ended) long before the test.
	// The peer ends when its stdin does, so at the latest with the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET | cloneflags}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting a peer in a new network namespace: %v", err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() {
			_ = cmd.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("peer on port %d did not start: %q, %v", port, line, err)
	}
	return &Peer{Cmd: cmd, Port: port, Payload: payload}
}

// peerMain brings loopback up, listens on 127.0.0.1:port, says "ready" on
// stdout, then connects and sends the payload every 20 ms until stdin
// ends.
func peerMain() error {
	if err := loopbackUp(); err != nil {
		return err
	}
	addr := net.JoinHostPort("127.0.0.1", os.Getenv(envPort))
	payload := os.Getenv(envPayload)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				_, _ = io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
	fmt.Println("ready")
	stop := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stop)
	}()
	for {
		select {
		case <-stop:
			return nil
		case <-time.After(20 * time.Millisecond):
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		_, _ = c.Write([]byte(payload))
		c.Close()
	}
}

// Netns returns the inode of a process's network namespace.
func Netns(t testing.TB, pid int) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// ReadPcap reads a pcap file with `tcpdump -r -nn -A` (packets and their
// payloads as text) and fails the test when tcpdump finds the file
// damaged (a cut record, a bad header).
func ReadPcap(t testing.TB, file string) string {
	t.Helper()
	cmd := exec.Command("tcpdump", "-r", file, "-nn", "-A")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || strings.Contains(stderr.String(), "truncated") {
		t.Fatalf("tcpdump -r %s: %v\n%s", file, err, stderr.String())
	}
	return string(out)
}
