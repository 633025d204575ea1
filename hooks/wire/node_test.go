package wire

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ktrace-dev/kubectl-trace/hooks"
)

func nodeRequest() Request {
	r := validRequest()
	r.Targets = []Target{{Kind: TargetNode, Node: "n1"}}
	return r
}

func TestNodeRequestRoundTrip(t *testing.T) {
	want := nodeRequest()
	enc, err := want.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeRequest(enc)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestNodeRequestRejects(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Request)
		wantErr string
	}{
		{name: "no node name", mutate: func(r *Request) { r.Targets[0].Node = "" }, wantErr: "needs the node's name"},
		{name: "names a pod", mutate: func(r *Request) { r.Targets[0].Pod = "web" }, wantErr: "names no pod or container"},
		{name: "names a container id", mutate: func(r *Request) { r.Targets[0].ContainerID = "containerd://0123456789abcdef" }, wantErr: "names no pod or container"},
		{name: "ephemeral mode", mutate: func(r *Request) { r.Mode = ModeEphemeral }, wantErr: "cannot be traced from an ephemeral container"},
		{name: "hook refuses nodes", mutate: func(r *Request) { r.Hook = "funcgraph"; r.Output = hooks.OutputText }, wantErr: `hook "funcgraph" cannot trace a whole node`},
		{name: "two nodes", mutate: func(r *Request) { r.Targets = append(r.Targets, Target{Kind: TargetNode, Node: "n2"}) }, wantErr: "only target of its request"},
		{name: "node and pod", mutate: func(r *Request) { r.Targets = append(r.Targets, validRequest().Targets[0]) }, wantErr: "only target of its request"},
		{name: "unknown kind", mutate: func(r *Request) { r.Targets[0].Kind = "cluster" }, wantErr: `unknown kind "cluster"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := nodeRequest()
			tt.mutate(&r)
			err := r.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestNodeTargetNames(t *testing.T) {
	n := Target{Kind: TargetNode, Node: "n1"}
	c := validRequest().Targets[0]
	got := []string{n.String(), n.Label(), n.FileName(), c.String(), c.Label(), c.FileName()}
	want := []string{"node/n1", "node/n1", "node_n1", "default/web/app", "web/app", "default_web_app"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
}
