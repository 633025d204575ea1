package otlp

import (
	"slices"
	"strings"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// ServiceName is service.name unless OTEL_SERVICE_NAME or
// OTEL_RESOURCE_ATTRIBUTES say otherwise.
const ServiceName = "kubectl-trace"

// Resource attributes of our own (no semantic convention has them).
const (
	AttrSessionID = "ktrace.session.id"
	AttrHook      = "ktrace.hook"
)

// Session is the trace session an exporter reports on.
type Session struct {
	// ID is the session's id (the helpers' kubectl-trace.dev/session label).
	ID string
	// Hook is the hook's name (sched, tcp, …).
	Hook string
	// Version is the plugin's version: service.version.
	Version string
}

// sessionResource describes the session as a whole: the session span's
// resource, and the start check's.
func sessionResource(cfg Config, s Session) *resource.Resource {
	return newResource(cfg, s, nil)
}

// targetResource describes one traced container in semantic conventions,
// or for a whole node the node only.
func targetResource(cfg Config, s Session, t wire.Target) *resource.Resource {
	var facts []attribute.KeyValue
	if t.Node != "" {
		facts = append(facts, semconv.K8SNodeName(t.Node))
	}
	if !t.IsNode() {
		facts = append(facts,
			semconv.K8SNamespaceName(t.Namespace),
			semconv.K8SPodName(t.Pod),
			semconv.K8SContainerName(t.Container),
		)
		if t.PodUID != "" {
			facts = append(facts, semconv.K8SPodUID(t.PodUID))
		}
		if id := t.RuntimeID(); id != "" {
			facts = append(facts, semconv.ContainerID(id))
		}
		if scheme, _, ok := strings.Cut(t.ContainerID, "://"); ok && scheme != "" {
			facts = append(facts, semconv.ContainerRuntimeName(scheme))
		}
	}
	return newResource(cfg, s, facts)
}

// newResource is OTEL_RESOURCE_ATTRIBUTES (and OTEL_SERVICE_NAME) over
// service.name and service.version, then the session's and the target's
// facts over both: the user names the service, the exporter says what was
// traced.
func newResource(cfg Config, s Session, facts []attribute.KeyValue) *resource.Resource {
	attrs := []attribute.KeyValue{semconv.ServiceName(ServiceName)}
	if s.Version != "" {
		attrs = append(attrs, semconv.ServiceVersion(s.Version))
	}
	keys := make([]string, 0, len(cfg.Resource))
	for k := range cfg.Resource {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		attrs = append(attrs, attribute.String(k, cfg.Resource[k]))
	}
	attrs = append(attrs, attribute.String(AttrSessionID, s.ID), attribute.String(AttrHook, s.Hook))
	// attribute sets keep the last value of a key.
	return resource.NewWithAttributes(semconv.SchemaURL, append(attrs, facts...)...)
}
