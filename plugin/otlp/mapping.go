package otlp

import (
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// attrPrefix names the attributes of fields that have no semantic
// convention: ktrace.<field>, as -o json names them.
const attrPrefix = "ktrace."

// fieldAttrs maps a hook's field to a semantic-convention attribute, keyed
// by "hook.field" where a field's meaning depends on the hook (errno is a
// name in syscalls, a number in signals), else by "field". A field not
// listed becomes ktrace.<field>.
var fieldAttrs = map[string]attribute.Key{
	"exec.ppid":      semconv.ProcessParentPIDKey,
	"exec.uid":       semconv.ProcessRealUserIDKey,
	"exec.filename":  semconv.ProcessExecutablePathKey,
	"open.path":      semconv.FilePathKey,
	"open.error":     semconv.ErrorTypeKey,
	"syscalls.errno": semconv.ErrorTypeKey,
	"tcp.family":     semconv.NetworkTypeKey,
	"tcp.saddr":      semconv.NetworkLocalAddressKey,
	"tcp.sport":      semconv.NetworkLocalPortKey,
	"tcp.daddr":      semconv.NetworkPeerAddressKey,
	"tcp.dport":      semconv.NetworkPeerPortKey,
}

// intFields are the fields that hold integers (docs/hooks.md), sent as
// integer attributes; keyed like fieldAttrs. A value that does not parse
// goes as the string it is.
var intFields = map[string]bool{
	"pid": true, "ppid": true, "uid": true, "open.result": true,
	"sport": true, "dport": true, "duration_us": true, "duration_ns": true,
	"nr": true, "count": true, "total_ns": true, "avg_ns": true,
	"usecs_lo": true, "usecs_hi": true,
	"victim_pid": true, "victim_uid": true, "trigger_pid": true, "pages": true,
	"sig": true, "code": true, "signals.errno": true, "sender_pid": true, "receiver_pid": true, "group": true,
	"sector": true, "nr_sector": true, "bytes": true, "latency_ns": true, "queue_ns": true, "block.error": true,
}

// hookAttrs are attributes every event of a hook carries.
var hookAttrs = map[string][]attribute.KeyValue{
	"tcp": {semconv.NetworkTransportTCP},
}

// AttributeKey is the attribute a hook's field is exported as.
func AttributeKey(hook, field string) attribute.Key {
	if k, ok := fieldAttrs[hook+"."+field]; ok {
		return k
	}
	if k, ok := fieldAttrs[field]; ok {
		return k
	}
	return attribute.Key(attrPrefix + field)
}

// isInt says whether a hook's field holds integers.
func isInt(hook, field string) bool {
	return intFields[hook+"."+field] || intFields[field]
}

// EventName is the log record's event name: ktrace.<hook>.<event>.
func EventName(hook, event string) string {
	return attrPrefix + hook + "." + event
}

// WallTime converts an event's time (seconds of the helper's trace clock)
// to wall-clock time: wall = trace time + offset, the offset the helper
// measured between CLOCK_REALTIME and its trace clock.
func WallTime(seconds float64, offset time.Duration) time.Time {
	sec, frac := math.Modf(seconds)
	ns := int64(sec)*1e9 + int64(math.Round(frac*1e9))
	return time.Unix(0, ns).Add(offset)
}

// mapper turns events into log records. It caches what every event of
// the session repeats (attribute keys, event names) and reuses its
// attribute buffer: owned by one goroutine, the worker.
type mapper struct {
	hook   string
	fields map[string]fieldInfo
	names  map[string]string
	kvs    []attribute.KeyValue
}

// fieldInfo is how a field is exported.
type fieldInfo struct {
	key   attribute.Key
	isInt bool
}

func newMapper(hook string) *mapper {
	return &mapper{hook: hook, fields: map[string]fieldInfo{}, names: map[string]string{}}
}

// fill makes r, a copy of its target's template (resource, scope, trace
// and span IDs, limits), the record of one event: Timestamp the event's
// wall time (none while the offset is not known), ObservedTimestamp when
// it was received, the event name, the body (text, or one built from the
// fields), severity INFO and the attributes.
func (m *mapper) fill(r *sdklog.Record, ev *wire.Event, text string, received time.Time, offset time.Duration, offsetKnown bool) {
	if offsetKnown {
		r.SetTimestamp(WallTime(ev.Time, offset))
	}
	r.SetObservedTimestamp(received)
	name, ok := m.names[ev.Event]
	if !ok {
		name = EventName(m.hook, ev.Event)
		m.names[ev.Event] = name
	}
	r.SetEventName(name)
	r.SetSeverity(log.SeverityInfo)
	r.SetSeverityText("INFO")
	if text == "" {
		text = Body(ev)
	}
	r.SetBody(attribute.StringValue(text))
	m.kvs = m.appendAttributes(m.kvs[:0], ev)
	// SetAttributes copies: the buffer is reused.
	r.SetAttributes(m.kvs...)
}

// appendAttributes appends the event's attributes, of its record and of
// its duration's span: the task, the CPU, the hook's constant attributes
// and each field.
func (m *mapper) appendAttributes(kvs []attribute.KeyValue, ev *wire.Event) []attribute.KeyValue {
	kvs = append(kvs,
		semconv.ProcessPID(ev.PID),
		semconv.ProcessExecutableName(ev.Comm),
		semconv.CPULogicalNumber(ev.CPU),
	)
	kvs = append(kvs, hookAttrs[m.hook]...)
	for k, v := range ev.Fields {
		f, ok := m.fields[k]
		if !ok {
			f = fieldInfo{key: AttributeKey(m.hook, k), isInt: isInt(m.hook, k)}
			m.fields[k] = f
		}
		kvs = append(kvs, f.attribute(v))
	}
	return kvs
}

// attribute is one field's value as its attribute.
func (f fieldInfo) attribute(value string) attribute.KeyValue {
	if f.isInt {
		if n, err := strconv.ParseInt(value, 10, 64); err == nil {
			return f.key.Int64(n)
		}
	}
	return f.key.String(value)
}

// Body is the text of an event that came without the line -o text shows:
// comm-pid event: key=value …, values quoted where they need it. The time
// is the record's Timestamp.
func Body(ev *wire.Event) string {
	var keys [16]string
	b := make([]byte, 0, 128)
	b = append(b, ev.Comm...)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(ev.PID), 10)
	b = append(b, ' ')
	b = append(b, ev.Event...)
	b = append(b, ':')
	for _, k := range sortedKeys(keys[:0], ev.Fields) {
		b = append(b, ' ')
		b = append(b, k...)
		b = append(b, '=')
		if v := ev.Fields[k]; needsQuote(v) {
			b = strconv.AppendQuote(b, v)
		} else {
			b = append(b, v...)
		}
	}
	return string(b)
}

// needsQuote says whether a value must be quoted to read back: empty,
// with a blank, '=', a quote, a backslash, or anything not printable ASCII.
func needsQuote(v string) bool {
	if v == "" {
		return true
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c >= 0x7f || c == '=' || c == '"' || c == '\\' {
			return true
		}
	}
	return false
}

// sortedKeys appends m's keys to keys, sorted.
func sortedKeys(keys []string, m map[string]string) []string {
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
