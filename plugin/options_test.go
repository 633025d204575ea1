package plugin

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/plugin/session"
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdtesting "k8s.io/kubectl/pkg/cmd/testing"
)

// completed is what Complete and Validate make of a command line: the
// engine's config, and the targets Run resolves.
type completed struct {
	Hook   string
	Query  targetQuery
	Config session.Config
}

// TestCompleteAndValidate parses real command lines, as kubectl's
// debug_test does, against a kubeconfig whose namespace is "ns".
func TestCompleteAndValidate(t *testing.T) {
	base := session.Config{
		Format: hooks.OutputText, Mode: session.NodeMode{NodeNamespace: "ns"}, Image: DefaultImage(),
		StartTimeout: 2 * time.Minute, StopTimeout: 30 * time.Second, Args: map[string]string{},
	}
	with := func(f func(*session.Config)) session.Config {
		c := base
		f(&c)
		return c
	}
	tests := []struct {
		name    string
		args    []string
		want    completed
		wantErr string
	}{
		{name: "a pod, the defaults", args: []string{"pod/web", "--hook", "sched"},
			want: completed{Hook: "sched", Query: targetQuery{Args: []string{"pod/web"}, Namespace: "ns"}, Config: base}},
		{name: "a bare name is a pod", args: []string{"web", "--hook", "sched"},
			want: completed{Hook: "sched", Query: targetQuery{Args: []string{"pod/web"}, Namespace: "ns"}, Config: base}},
		{name: "limits and format", args: []string{"deploy/web", "--hook", "sched", "-o", "json", "--duration", "10s", "--max-size", "1Mi", "--max-events", "5", "--stop-timeout", "5s", "-c", "app"},
			want: completed{Hook: "sched", Query: targetQuery{Args: []string{"deploy/web"}, Namespace: "ns"}, Config: with(func(c *session.Config) {
				c.Format, c.Duration, c.MaxBytes, c.MaxEvents, c.StopTimeout, c.Container = hooks.OutputJSON, 10*time.Second, 1<<20, 5, 5*time.Second, "app"
			})}},
		{name: "hook parameters with their defaults", args: []string{"pod/web", "--hook", "tcpdump", "--arg", "filter=tcp port 80", "-o", "pcap", "--output-dir", "caps"},
			want: completed{Hook: "tcpdump", Query: targetQuery{Args: []string{"pod/web"}, Namespace: "ns"}, Config: with(func(c *session.Config) {
				c.Format, c.PerTarget = hooks.OutputPCAP, true
				c.Args = map[string]string{hooks.TcpdumpFilter: "tcp port 80", hooks.TcpdumpInterface: "any", hooks.TcpdumpSnaplen: "262144"}
			})}},
		{name: "a selector in every namespace", args: []string{"-l", "app=web", "-A", "--hook", "sched"},
			want: completed{Hook: "sched", Query: targetQuery{Args: []string{}, Selector: "app=web", Namespace: "ns", AllNamespaces: true}, Config: base}},
		{name: "whole nodes, helpers in a namespace of their own", args: []string{"node/n1", "no/n2", "--hook", "sched", "--helper-namespace", "tracing"},
			want: completed{Hook: "sched", Query: targetQuery{Args: []string{"node/n1", "no/n2"}, Namespace: "ns"}, Config: with(func(c *session.Config) {
				c.Nodes, c.Mode = []string{"n1", "n2"}, session.NodeMode{Namespace: "tracing", NodeNamespace: "ns"}
			})}},
		{name: "ephemeral mode", args: []string{"pod/web", "--hook", "sched", "--mode", "ephemeral", "--privileged", "--image", "img:v2"},
			want: completed{Hook: "sched", Query: targetQuery{Args: []string{"pod/web"}, Namespace: "ns"}, Config: with(func(c *session.Config) {
				c.Mode, c.Privileged, c.Image = session.EphemeralMode{}, true, "img:v2"
			})}},
		{name: "unknown hook", args: []string{"pod/web", "--hook", "nope"}, wantErr: `unknown hook "nope"`},
		{name: "no hook", args: []string{"pod/web"}, wantErr: "--hook is required"},
		{name: "bad size", args: []string{"pod/web", "--hook", "sched", "--max-size", "lots"}, wantErr: `--max-size "lots" is not a size`},
		{name: "a parameter the hook lacks", args: []string{"pod/web", "--hook", "tcpdump", "--arg", "port=80"}, wantErr: `hook "tcpdump" has no parameter "port"`},
		{name: "-A without -l", args: []string{"pod/web", "--hook", "sched", "-A"}, wantErr: "-A needs -l"},
		{name: "ephemeral and a helper namespace", args: []string{"pod/web", "--hook", "sched", "--mode", "ephemeral", "--helper-namespace", "x"}, wantErr: "--helper-namespace has no effect"},
		{name: "nodes and pods", args: []string{"node/n1", "pod/web", "--hook", "sched"}, wantErr: "not both in one command"},
		{name: "a node in ephemeral mode", args: []string{"node/n1", "--hook", "sched", "--mode", "ephemeral"}, wantErr: "--mode ephemeral cannot trace a whole node"},
		{name: "a hook that refuses nodes", args: []string{"node/n1", "--hook", "funcgraph"}, wantErr: `hook "funcgraph" cannot trace a whole node`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tf := cmdtesting.NewTestFactory().WithNamespace("ns")
			defer tf.Cleanup()
			var out bytes.Buffer
			o := NewTraceOptions(genericiooptions.IOStreams{Out: &out, ErrOut: &out})
			cmd := &cobra.Command{Run: func(*cobra.Command, []string) {}}
			o.AddFlags(cmd)
			if err := cmd.Flags().Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := o.Complete(tf, cmd.Flags().Args())
			if err == nil {
				err = o.Validate()
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cfg := o.config(cluster{}, nil, nil)
			got := completed{Hook: cfg.Hook.Name, Query: o.query, Config: cfg}
			ignore := cmpopts.IgnoreFields(session.Config{}, "ID", "Hook", "Outputs")
			if diff := cmp.Diff(tt.want, got, ignore, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("completed options (-want +got):\n%s", diff)
			}
		})
	}
}

// TestExecCompleteAndValidate parses exec's targets, command and flags.
func TestExecCompleteAndValidate(t *testing.T) {
	tests := []struct {
		name     string
		targets  []string
		command  []string
		flags    []string
		wantArgs []string
		wantErr  string
	}{
		{name: "a pod", targets: []string{"web"}, command: []string{"ip", "-o", "addr"}, wantArgs: []string{"pod/web"}},
		{name: "namespaces", targets: []string{"pod/web"}, command: []string{"ss"}, flags: []string{"--ns", "net,uts"}, wantArgs: []string{"pod/web"}},
		{name: "no command", targets: []string{"pod/web"}, wantErr: "give the command after --"},
		{name: "bad namespace", targets: []string{"pod/web"}, command: []string{"ss"}, flags: []string{"--ns", "net,bogus"}, wantErr: `"bogus" is not a namespace`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tf := cmdtesting.NewTestFactory().WithNamespace("ns")
			defer tf.Cleanup()
			color := ColorNever
			o := NewExecOptions(genericiooptions.IOStreams{}, &color)
			cmd := &cobra.Command{Run: func(*cobra.Command, []string) {}}
			o.AddFlags(cmd)
			if err := cmd.Flags().Parse(tt.flags); err != nil {
				t.Fatal(err)
			}
			err := o.Complete(tf, tt.targets, tt.command)
			if err == nil {
				err = o.Validate()
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(targetQuery{Args: tt.wantArgs, Namespace: "ns"}, o.query); diff != "" {
				t.Errorf("query (-want +got):\n%s", diff)
			}
		})
	}
}
