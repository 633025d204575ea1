package otlp

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/log"
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
	"pid": true, "ppid": true, "uid": true, "result": true,
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

// record maps one event to the log record the exporter sends: Timestamp
// the event's wall time (zero when the offset is not known yet),
// ObservedTimestamp when it was received, the event name, the body (text,
// or one built from the fields), severity INFO, and the attributes.
func record(hook string, ev *wire.Event, text string, received time.Time, offset time.Duration, offsetKnown bool) log.Record {
	var r log.Record
	if offsetKnown {
		r.SetTimestamp(WallTime(ev.Time, offset))
	}
	r.SetObservedTimestamp(received)
	r.SetEventName(EventName(hook, ev.Event))
	r.SetSeverity(log.SeverityInfo)
	r.SetSeverityText("INFO")
	if text == "" {
		text = Body(ev)
	}
	r.SetBody(attribute.StringValue(text))
	r.AddAttributes(eventAttributes(hook, ev)...)
	return r
}

// eventAttributes are the event's attributes, of its record and of its
// duration's span: the task, the CPU, the hook's constant attributes and
// each field, in the fields' sorted order so that records compare equal.
func eventAttributes(hook string, ev *wire.Event) []attribute.KeyValue {
	kvs := make([]attribute.KeyValue, 0, 4+len(ev.Fields))
	kvs = append(kvs,
		semconv.ProcessPID(ev.PID),
		semconv.ProcessExecutableName(ev.Comm),
		semconv.CPULogicalNumber(ev.CPU),
	)
	kvs = append(kvs, hookAttrs[hook]...)
	for _, k := range sortedKeys(ev.Fields) {
		kvs = append(kvs, fieldAttribute(hook, k, ev.Fields[k]))
	}
	return kvs
}

// fieldAttribute is one field as an attribute.
func fieldAttribute(hook, field, value string) attribute.KeyValue {
	key := AttributeKey(hook, field)
	if isInt(hook, field) {
		if n, err := strconv.ParseInt(value, 10, 64); err == nil {
			return key.Int64(n)
		}
	}
	return key.String(value)
}

// Body is the text of an event that came without the line -o text shows:
// comm-pid event: key=value …, values quoted where they need it. The time
// is the record's Timestamp.
func Body(ev *wire.Event) string {
	var b strings.Builder
	b.WriteString(ev.Comm)
	b.WriteByte('-')
	b.WriteString(strconv.Itoa(ev.PID))
	b.WriteByte(' ')
	b.WriteString(ev.Event)
	b.WriteByte(':')
	for _, k := range sortedKeys(ev.Fields) {
		b.WriteByte(' ')
		b.WriteString(k)
		b.WriteByte('=')
		v := ev.Fields[k]
		if v == "" || strings.ContainsAny(v, " =\"\\") || strconv.Quote(v) != `"`+v+`"` {
			v = strconv.Quote(v)
		}
		b.WriteString(v)
	}
	return b.String()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
