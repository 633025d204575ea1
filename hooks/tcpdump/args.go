package tcpdump

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/ktrace-dev/kubectl-trace/hooks"
)

// User is the unprivileged user tcpdump drops to once its capture is open
// (-Z), so its packet decoders never run as root. The tracer image has it.
const User = "tcpdump"

// BufferKiB is the kernel capture buffer of each tcpdump (-B).
const BufferKiB = 16384

// Argv returns tcpdump's arguments (without the program name) for an
// output format and the hook's resolved parameters (hooks.Descriptor's
// ResolveArgs: defaults filled in, values checked).
func Argv(output string, args map[string]string) ([]string, error) {
	iface := args[hooks.TcpdumpInterface]
	if iface == "" {
		iface = "any"
	}
	snaplen := args[hooks.TcpdumpSnaplen]
	if snaplen == "" {
		snaplen = strconv.Itoa(hooks.TcpdumpMaxSnaplen)
	}
	argv := []string{
		"-i", iface,
		"-s", snaplen,
		// Numeric hosts and ports: the helper resolves no names.
		"-nn",
		// Each packet as it arrives, not when libpcap's block times out
		// (up to a second later, and never if the session stops first:
		// measured, the last second of a capture went missing).
		"--immediate-mode",
		// Immediate mode retires a ring block per wakeup, and libpcap's
		// 2 MiB default holds only 8 blocks of 256 KiB: on a busy node
		// (loadavg 14 on 2 CPUs) it dropped 7 to 15 % of 1,000 packets/s.
		// 16 MiB (64 blocks) dropped none; it is not charged to the
		// helper's memory cgroup.
		"-B", strconv.Itoa(BufferKiB),
		"-Z", User,
	}
	switch output {
	case hooks.OutputPCAP:
		// Binary pcap on stdout, flushed after every packet.
		argv = append(argv, "-U", "-w", "-")
	case hooks.OutputText:
		argv = append(argv, "-l")
	case hooks.OutputJSON:
		// Line buffered, with the timestamp as seconds since the epoch.
		argv = append(argv, "-l", "-tt")
	default:
		return nil, fmt.Errorf("tcpdump writes no %q output: use text, json or pcap", output)
	}
	if f := strings.TrimSpace(args[hooks.TcpdumpFilter]); f != "" {
		// One argument after "--": tcpdump joins what follows its options
		// into the expression, and "--" ends option parsing (GNU getopt
		// would otherwise take a later word starting with '-' as an option).
		argv = append(argv, "--", f)
	}
	return argv, nil
}

// lineKind classifies a line tcpdump writes on stderr.
type lineKind int

const (
	lineOther     lineKind = iota // anything else: forwarded as it is
	lineListening                 // "listening on any, link-type …": the capture is open
	lineNoise                     // repeated or irrelevant: not forwarded
	lineCaptured                  // "N packets captured"
	lineReceived                  // "N packets received by filter"
	lineDropped                   // "N packets dropped by kernel"
)

var countLine = regexp.MustCompile(`^(\d+) packets? (captured|received by filter|dropped by kernel)$`)

// classify returns what a stderr line of tcpdump says, and the count for
// the final statistics lines.
func classify(line string) (lineKind, uint64) {
	l := strings.TrimSpace(line)
	if m := countLine.FindStringSubmatch(l); m != nil {
		n, err := strconv.ParseUint(m[1], 10, 64)
		if err != nil {
			return lineOther, 0
		}
		switch m[2] {
		case "captured":
			return lineCaptured, n
		case "received by filter":
			return lineReceived, n
		default:
			return lineDropped, n
		}
	}
	rest := strings.TrimPrefix(l, "tcpdump: ")
	switch {
	case strings.HasPrefix(rest, "listening on "):
		return lineListening, 0
	case strings.HasPrefix(rest, "data link type "),
		// -v is not ours to give: the hook prints one line per packet.
		strings.HasPrefix(rest, "verbose output suppressed"):
		return lineNoise, 0
	}
	return lineOther, 0
}

// logLine is how a stderr line of tcpdump is forwarded: prefixed with
// "tcpdump: " once, and with the target's name when a session has several.
func logLine(target, line string) string {
	rest := strings.TrimPrefix(strings.TrimRight(line, "\r\n"), "tcpdump: ")
	if target != "" {
		return "tcpdump[" + target + "]: " + rest
	}
	return "tcpdump: " + rest
}

// parseTimed splits a line of `tcpdump -tt` into its timestamp (seconds
// since the epoch) and the rest; ok is false when the line does not start
// with one.
func parseTimed(line []byte) (t float64, rest []byte, ok bool) {
	line = bytes.TrimRight(line, "\r\n")
	i := bytes.IndexByte(line, ' ')
	if i <= 0 {
		return 0, line, false
	}
	t, err := strconv.ParseFloat(string(line[:i]), 64)
	if err != nil {
		return 0, line, false
	}
	return t, line[i+1:], true
}
