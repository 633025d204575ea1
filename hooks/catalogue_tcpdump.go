package hooks

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// Parameters of the tcpdump hook.
const (
	TcpdumpFilter    = "filter"
	TcpdumpInterface = "interface"
	TcpdumpSnaplen   = "snaplen"
	// TcpdumpMaxSnaplen is tcpdump's own maximum (and default) snapshot length.
	TcpdumpMaxSnaplen = 262144
)

// tcpdumpHooks run tcpdump in the target's network namespace (package tcpdump).
var tcpdumpHooks = []Descriptor{
	{
		Name: "tcpdump",
		Kind: KindTcpdump,
		Summary: "packets in the target's network namespace (the whole pod's traffic), captured by tcpdump: " +
			"decoded lines, or pcap for Wireshark",
		Outputs: []string{OutputText, OutputJSON, OutputPCAP},
		Params: []Param{
			{
				Name: TcpdumpFilter,
				Help: "pcap filter expression, as tcpdump takes it (e.g. 'tcp port 8080 and host 10.0.0.7'); " +
					"empty captures every packet",
				Check: checkTcpdumpFilter,
			},
			{
				Name:    TcpdumpInterface,
				Default: "any",
				Help:    "interface in the pod's network namespace (the node's for node/NAME), such as eth0 or lo; any captures all of them",
				Check:   checkInterfaceName,
			},
			{
				Name:    TcpdumpSnaplen,
				Default: strconv.Itoa(TcpdumpMaxSnaplen),
				Help:    "bytes kept of each packet, 1 to 262144; less keeps captures small (headers only: 128)",
				Check:   checkSnaplen,
			},
		},
		Fields: []Field{
			{Name: "line", Help: "tcpdump's one-line decoding of the packet (-nn: numeric hosts and ports), " +
				"after its timestamp, which is the event's time (seconds since the epoch); " +
				"with interface any it starts with the interface and the direction (In, Out)"},
		},
		// Not NET_ADMIN: measured, tcpdump captures on any, lo and eth0,
		// promiscuous, with NET_RAW, SETUID and SETGID alone. The target's
		// network namespace is found through its processes'
		// /proc/<pid>/ns/net: the node's PIDs.
		Needs: needing(Needs{HostPID: true},
			Capability{"NET_RAW", "open the packet socket tcpdump captures from"},
			Capability{"SYS_ADMIN", "`setns(CLONE_NEWNET)` into the target's network namespace"},
			Capability{"SYS_PTRACE", "open `/proc/<pid>/ns/net` of another user's process (the kernel checks ptrace access to the target)"},
			Capability{"SETUID", "tcpdump drops to its own unprivileged user once the capture is open, so its packet decoders do not run as root"},
			Capability{"SETGID", "likewise, its group"},
			Capability{"KILL", "stop tcpdump, which then runs as another user, with SIGINT, so that it flushes and reports its counts"},
		),
	},
}

// checkTcpdumpFilter accepts any pcap filter expression that cannot be
// mistaken for tcpdump options. The helper passes it as one argument after
// "--", never through a shell; tcpdump itself reports syntax errors before
// the session starts.
func checkTcpdumpFilter(v string) error {
	if strings.HasPrefix(strings.TrimSpace(v), "-") {
		return errors.New("a filter cannot start with '-' (it would read as a tcpdump option): write an expression such as 'tcp port 80'")
	}
	if strings.ContainsRune(v, 0) {
		return errors.New("a filter cannot contain a NUL byte")
	}
	return nil
}

// checkInterfaceName accepts what Linux accepts as a network interface name
// (1 to 15 bytes; no '/', ':', white space or control characters; not "."
// or ".."), "any" among them.
func checkInterfaceName(v string) error {
	const ifnamsiz = 16
	switch {
	case v == "":
		return errors.New("the interface name is empty: name one, such as eth0, or use any")
	case len(v) >= ifnamsiz:
		return fmt.Errorf("an interface name has at most %d bytes", ifnamsiz-1)
	case v == "." || v == "..":
		return errors.New("not an interface name")
	case strings.HasPrefix(v, "-"):
		return errors.New("an interface name cannot start with '-'")
	}
	for _, r := range v {
		if r == '/' || r == ':' || unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("an interface name cannot contain %q", r)
		}
	}
	return nil
}

func checkSnaplen(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > TcpdumpMaxSnaplen {
		return fmt.Errorf("the snapshot length is a number of bytes from 1 to %d", TcpdumpMaxSnaplen)
	}
	return nil
}
