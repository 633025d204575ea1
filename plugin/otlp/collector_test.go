//go:build otelcol

package otlp

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The tests in files tagged otelcol export to the project's own collector
// (make otelcol: bin/tools/otelcol, or KTRACE_OTELCOL) on loopback, with
// hack/otelcol/test-config.yaml: its file exporter writes what it receives
// as OTLP JSON lines, which the tests read. `make test-otelcol` runs them.

// collector is one running bin/tools/otelcol.
type collector struct {
	t          testing.TB
	cmd        *exec.Cmd
	grpc, http string // host:port of the receivers
	file       string
	log        *lockedBuffer
	exited     chan error
}

// otelcolBinary is the collector to run: KTRACE_OTELCOL, else the one make
// otelcol builds. Missing is a failure, not a skip: make test-otelcol
// builds it first.
func otelcolBinary(t testing.TB) string {
	if p := os.Getenv("KTRACE_OTELCOL"); p != "" {
		return p
	}
	p, err := filepath.Abs("../../bin/tools/otelcol")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the collector %s is missing: run make otelcol (or make test-otelcol), or set KTRACE_OTELCOL", p)
	}
	return p
}

// startCollector starts a collector on two free loopback ports, writing
// into a file of the test's temporary directory, and waits for it to say
// it is ready. A port taken between picking and binding is retried.
func startCollector(t testing.TB) *collector { return startCollectorWith(t, "test-config.yaml") }

// startCollectorWith is startCollector with another configuration of
// hack/otelcol, and env (KEY=value) for it.
func startCollectorWith(t testing.TB, configName string, env ...string) *collector {
	t.Helper()
	bin := otelcolBinary(t)
	config, err := filepath.Abs("../../hack/otelcol/" + configName)
	if err != nil {
		t.Fatal(err)
	}
	var last error
	for attempt := 0; attempt < 3; attempt++ {
		c := &collector{t: t, grpc: freeAddr(t), http: freeAddr(t), log: &lockedBuffer{}, exited: make(chan error, 1),
			file: filepath.Join(t.TempDir(), "otlp.jsonl")}
		c.cmd = exec.Command(bin, "--config", config)
		c.cmd.Env = append(append(os.Environ(), env...), "KTRACE_OTELCOL_GRPC="+c.grpc, "KTRACE_OTELCOL_HTTP="+c.http, "KTRACE_OTELCOL_FILE="+c.file)
		if last = c.start(); last == nil {
			t.Cleanup(func() { c.stop() })
			return c
		}
	}
	t.Fatalf("starting the collector: %v", last)
	return nil
}

func (c *collector) start() error {
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		return err
	}
	c.cmd.Stdout = io.Discard
	if err := c.cmd.Start(); err != nil {
		return err
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			c.log.WriteLine(sc.Text())
			if strings.Contains(sc.Text(), "Everything is ready") {
				once.Do(func() { close(ready) })
			}
		}
		c.exited <- c.cmd.Wait()
	}()
	select {
	case <-ready:
		return nil
	case err := <-c.exited:
		c.exited <- err
		return fmt.Errorf("the collector exited before it was ready (%v): %s", err, c.log.Tail(20))
	case <-time.After(60 * time.Second):
		_ = c.cmd.Process.Kill()
		return fmt.Errorf("the collector was not ready after 60 s: %s", c.log.Tail(20))
	}
}

// stop ends the collector gracefully (SIGTERM): it finishes the requests
// in flight and its file exporter writes everything it accepted.
func (c *collector) stop() {
	if c.cmd.ProcessState != nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.exited:
		c.exited <- err
		if err != nil {
			c.t.Errorf("the collector exited with %v: %s", err, c.log.Tail(20))
		}
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		c.t.Errorf("the collector did not stop within 30 s of SIGTERM: %s", c.log.Tail(20))
	}
}

// endpoint is the receiver of protocol as --otlp takes it.
func (c *collector) endpoint(protocol string) string {
	if protocol == ProtocolGRPC {
		return "http://" + c.grpc
	}
	return "http://" + c.http
}

// received parses what the collector wrote so far.
func (c *collector) received() otlpData {
	c.t.Helper()
	d, err := parseOTLPFile(c.file)
	if err != nil {
		c.t.Fatal(err)
	}
	return d
}

// waitFor reads the collector's file until cond holds (the file exporter
// writes once a second) or fails the test after limit.
func (c *collector) waitFor(what string, limit time.Duration, cond func(otlpData) bool) otlpData {
	c.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		d := c.received()
		if cond(d) {
			return d
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("waited %v for the collector to receive %s: %s", limit, what, c.log.Tail(10))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freeAddr is a loopback address no one listens on now.
func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type lockedBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (b *lockedBuffer) WriteLine(s string) {
	b.mu.Lock()
	b.lines = append(b.lines, s)
	b.mu.Unlock()
}

func (b *lockedBuffer) Tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines[max(0, len(b.lines)-n):], "\n")
}

// otlpData is everything in the collector's file.
type otlpData struct {
	Logs    []logJSON
	Spans   []spanJSON
	Metrics []metricJSON
}

// The OTLP JSON encoding (OTLP specification, "JSON Protobuf Encoding"):
// camelCase fields, 64-bit integers as strings, trace and span IDs as hex.
type (
	otlpLine struct {
		ResourceLogs []struct {
			Resource  resourceJSON `json:"resource"`
			ScopeLogs []struct {
				Scope      scopeJSON `json:"scope"`
				LogRecords []logJSON `json:"logRecords"`
			} `json:"scopeLogs"`
		} `json:"resourceLogs"`
		ResourceSpans []struct {
			Resource   resourceJSON `json:"resource"`
			ScopeSpans []struct {
				Scope scopeJSON  `json:"scope"`
				Spans []spanJSON `json:"spans"`
			} `json:"scopeSpans"`
		} `json:"resourceSpans"`
		ResourceMetrics []struct {
			Resource     resourceJSON `json:"resource"`
			ScopeMetrics []struct {
				Scope   scopeJSON    `json:"scope"`
				Metrics []metricJSON `json:"metrics"`
			} `json:"scopeMetrics"`
		} `json:"resourceMetrics"`
	}
	resourceJSON struct {
		Attributes []kvJSON `json:"attributes"`
	}
	scopeJSON struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	kvJSON struct {
		Key   string    `json:"key"`
		Value valueJSON `json:"value"`
	}
	valueJSON struct {
		StringValue *string  `json:"stringValue"`
		IntValue    *string  `json:"intValue"`
		DoubleValue *float64 `json:"doubleValue"`
		BoolValue   *bool    `json:"boolValue"`
	}
	logJSON struct {
		TimeUnixNano         string    `json:"timeUnixNano"`
		ObservedTimeUnixNano string    `json:"observedTimeUnixNano"`
		SeverityNumber       int       `json:"severityNumber"`
		SeverityText         string    `json:"severityText"`
		EventName            string    `json:"eventName"`
		Body                 valueJSON `json:"body"`
		Attributes           []kvJSON  `json:"attributes"`
		TraceID              string    `json:"traceId"`
		SpanID               string    `json:"spanId"`
		// Resource and Scope are copied from the enclosing message.
		Resource map[string]string `json:"-"`
		Scope    scopeJSON         `json:"-"`
	}
	spanJSON struct {
		TraceID           string   `json:"traceId"`
		SpanID            string   `json:"spanId"`
		ParentSpanID      string   `json:"parentSpanId"`
		Name              string   `json:"name"`
		StartTimeUnixNano string   `json:"startTimeUnixNano"`
		EndTimeUnixNano   string   `json:"endTimeUnixNano"`
		Attributes        []kvJSON `json:"attributes"`
		Status            struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"status"`
		Resource map[string]string `json:"-"`
	}
	metricJSON struct {
		Name string `json:"name"`
		Unit string `json:"unit"`
		Sum  *struct {
			AggregationTemporality int             `json:"aggregationTemporality"`
			IsMonotonic            bool            `json:"isMonotonic"`
			DataPoints             []dataPointJSON `json:"dataPoints"`
		} `json:"sum"`
		Histogram *struct {
			AggregationTemporality int                  `json:"aggregationTemporality"`
			DataPoints             []histogramPointJSON `json:"dataPoints"`
		} `json:"histogram"`
		Resource map[string]string `json:"-"`
	}
	dataPointJSON struct {
		Attributes        []kvJSON `json:"attributes"`
		StartTimeUnixNano string   `json:"startTimeUnixNano"`
		TimeUnixNano      string   `json:"timeUnixNano"`
		AsInt             *string  `json:"asInt"`
		AsDouble          *float64 `json:"asDouble"`
	}
	histogramPointJSON struct {
		StartTimeUnixNano string    `json:"startTimeUnixNano"`
		TimeUnixNano      string    `json:"timeUnixNano"`
		Count             string    `json:"count"`
		Sum               float64   `json:"sum"`
		BucketCounts      []string  `json:"bucketCounts"`
		ExplicitBounds    []float64 `json:"explicitBounds"`
	}
)

// String is the value as text (integers in decimal).
func (v valueJSON) String() string {
	switch {
	case v.StringValue != nil:
		return *v.StringValue
	case v.IntValue != nil:
		return *v.IntValue
	case v.DoubleValue != nil:
		return fmt.Sprint(*v.DoubleValue)
	case v.BoolValue != nil:
		return fmt.Sprint(*v.BoolValue)
	}
	return ""
}

func attrMap(kvs []kvJSON) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[kv.Key] = kv.Value.String()
	}
	return m
}

// parseOTLPFile reads the file exporter's lines; a missing file is empty.
func parseOTLPFile(path string) (otlpData, error) {
	var d otlpData
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return d, nil
	}
	if err != nil {
		return d, err
	}
	// A line is complete with its newline: the last one may still be
	// being written while a test polls.
	lines := bytes.Split(b, []byte{'\n'})
	for i, line := range lines[:len(lines)-1] {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var l otlpLine
		if err := json.Unmarshal(line, &l); err != nil {
			return d, fmt.Errorf("line %d of %s: %w", i+1, path, err)
		}
		d.add(l)
	}
	return d, nil
}

func (d *otlpData) add(l otlpLine) {
	for _, rl := range l.ResourceLogs {
		res := attrMap(rl.Resource.Attributes)
		for _, sl := range rl.ScopeLogs {
			for _, r := range sl.LogRecords {
				r.Resource, r.Scope = res, sl.Scope
				d.Logs = append(d.Logs, r)
			}
		}
	}
	for _, rs := range l.ResourceSpans {
		res := attrMap(rs.Resource.Attributes)
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				s.Resource = res
				d.Spans = append(d.Spans, s)
			}
		}
	}
	for _, rm := range l.ResourceMetrics {
		res := attrMap(rm.Resource.Attributes)
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				m.Resource = res
				d.Metrics = append(d.Metrics, m)
			}
		}
	}
}
