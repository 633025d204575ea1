package tcpdump

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"time"
)

// readLines calls fn with every line of r, its '\n' included (a last line
// without one gets one), until r ends. After fn fails it reads on to the
// end without calling fn again, so the writer at the other end of r never
// blocks, and returns fn's first error; otherwise r's error (nil at EOF).
// line is only valid during the call.
func readLines(r io.Reader, fn func(line []byte) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		long  []byte // a line longer than br's buffer, so far
		fnErr error
	)
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, chunk...)
			continue
		}
		line := chunk
		if long != nil {
			line = append(long, chunk...)
			long = nil
		}
		if len(line) > 0 && fnErr == nil {
			if line[len(line)-1] != '\n' {
				line = append(line[:len(line):len(line)], '\n') // a copy: never write into br
			}
			fnErr = fn(line)
		}
		if err != nil {
			if fnErr != nil {
				return fnErr
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// textLine is the line text output shows for line, a line of `tcpdump
// -tt`: its timestamp as tcpdump prints it by default, the time of day in
// loc (tcpdump's local time zone) to the microsecond, then the rest. A
// line without a timestamp is itself.
func textLine(line []byte, loc *time.Location) string {
	line = bytes.TrimRight(line, "\r\n")
	stamp, rest, ok := bytes.Cut(line, []byte(" "))
	secs, frac, dot := bytes.Cut(stamp, []byte("."))
	sec, err := strconv.ParseInt(string(secs), 10, 64)
	if !ok || !dot || err != nil {
		return string(line)
	}
	return time.Unix(sec, 0).In(loc).Format("15:04:05") + "." + string(frac) + " " + string(rest)
}
