package session

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

func TestPlans(t *testing.T) {
	sched, _ := hooks.Lookup("sched")
	a := wire.Target{Node: "n2", Namespace: "shop", Pod: "a", PodUID: "ua", Container: "app", ContainerID: testCID}
	b := wire.Target{Node: "n1", Namespace: "shop", Pod: "b", PodUID: "ub", Container: "app", ContainerID: testCID}
	c := wire.Target{Node: "n2", Namespace: "shop", Pod: "c", PodUID: "uc", Container: "app", ContainerID: testCID}
	n1 := wire.Target{Kind: wire.TargetNode, Node: "n1"}
	cfg := Config{ID: "s1", Hook: sched, Args: map[string]string{}, Format: hooks.OutputJSON, MaxEvents: 9, MaxBytes: 1 << 20,
		Duration: time.Minute, Image: "img:v1"}
	request := func(mode string, framed bool, ts ...wire.Target) wire.Request {
		return wire.Request{Version: wire.ProtocolVersion, SessionID: "s1", Hook: "sched", Args: map[string]string{}, Output: hooks.OutputJSON,
			Mode: mode, Framed: framed, Compress: true, Targets: ts, MaxEvents: 9, MaxBytes: 1 << 20}
	}
	encode := func(r wire.Request) string {
		s, err := r.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	podPlan := func(name, ns string, framed bool, ts ...wire.Target) Plan {
		req := request(wire.ModeNode, framed, ts...)
		return Plan{Node: ts[0].Node, Targets: ts, Request: req, Helper: &PodHelper{Pod: HelperPod(HelperParams{
			Name: name, Namespace: ns, Node: ts[0].Node, Image: "img:v1", Request: req, EncodedRequest: encode(req),
			Deadline: 6 * time.Minute, Needs: sched.Needs,
		})}}
	}
	ephemeralPlan := func(name string, t wire.Target) Plan {
		req := request(wire.ModeEphemeral, true, t)
		return Plan{Node: t.Node, Targets: []wire.Target{t}, Request: req, Helper: &EphemeralHelper{Namespace: t.Namespace, Pod: t.Pod,
			Container: EphemeralContainer(EphemeralParams{Name: name, Image: "img:v1", Target: "app", EncodedRequest: encode(req), Needs: sched.Needs})}}
	}
	tests := []struct {
		name    string
		mode    Mode
		framed  bool
		targets []wire.Target
		want    []Plan
	}{
		{name: "one helper per node, in node order, in the targets' namespace", mode: NodeMode{NodeNamespace: "kube"}, framed: true,
			targets: []wire.Target{a, b, c},
			want:    []Plan{podPlan("kubectl-trace-s1", "shop", true, b), podPlan("kubectl-trace-s1-1", "shop", true, a, c)}},
		{name: "helpers in a namespace of their own", mode: NodeMode{Namespace: "tracing", NodeNamespace: "kube"}, framed: true,
			targets: []wire.Target{a, c},
			want:    []Plan{podPlan("kubectl-trace-s1", "tracing", true, a, c)}},
		{name: "a whole node's helper in the session's namespace, unframed", mode: NodeMode{NodeNamespace: "kube"},
			targets: []wire.Target{n1},
			want:    []Plan{podPlan("kubectl-trace-s1", "kube", false, n1)}},
		{name: "ephemeral: one container per target, in the target's pod", mode: EphemeralMode{}, framed: true,
			targets: []wire.Target{a, b},
			want:    []Plan{ephemeralPlan("kubectl-trace-s1", a), ephemeralPlan("kubectl-trace-s1-1", b)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			c.Mode = tt.mode
			p := &planner{cfg: &c, framed: tt.framed}
			got, err := p.plans(tt.targets)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("plans (-want +got):\n%s", diff)
			}
		})
	}
}

// A target that joins later gets the next name.
func TestPlanNumbersJoiningHelpers(t *testing.T) {
	sched, _ := hooks.Lookup("sched")
	cfg := Config{ID: "s1", Hook: sched, Format: hooks.OutputText, Image: "img", Mode: EphemeralMode{}}
	p := &planner{cfg: &cfg, framed: true}
	a := wire.Target{Node: "n1", Namespace: "ns", Pod: "a", PodUID: "ua", Container: "app", ContainerID: testCID}
	if _, err := p.plans([]wire.Target{a, a}); err != nil {
		t.Fatal(err)
	}
	pl, err := p.plan("n1", []wire.Target{a})
	if err != nil {
		t.Fatal(err)
	}
	if _, name, _ := pl.Helper.attachRef(); name != "a" || pl.Helper.(*EphemeralHelper).Container.Name != "kubectl-trace-s1-2" {
		t.Errorf("joining helper: pod %q container %q; want container kubectl-trace-s1-2 in pod a", name, pl.Helper.(*EphemeralHelper).Container.Name)
	}
}

// A request the helper would refuse is refused when planned, with the node.
func TestPlanRefusesABadRequest(t *testing.T) {
	sched, _ := hooks.Lookup("sched")
	cfg := Config{ID: "s1", Hook: sched, Format: hooks.OutputText, Image: "img", Mode: NodeMode{}}
	p := &planner{cfg: &cfg}
	_, err := p.plans([]wire.Target{{Node: "n1", Namespace: "ns", Pod: "a", Container: "app"}})
	if err == nil {
		t.Fatal("a target without a container id was planned")
	}
	if want := `building the request for node "n1"`; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q lacks %q", err, want)
	}
}
