//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	krand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
)

// relBadCase is one bad input: the plugin must refuse it with a message that
// names what to do (every want), exit non-zero, print nothing on stdout,
// and leave the cluster as it was.
type relBadCase struct {
	name string
	args []string
	// want must all appear in stderr; reject must not (wrong or leaking
	// wording).
	want, reject []string
	// created: the refusal can only come from the node (the image pull,
	// the node kernel's syscall list), so a helper pod is created; it must
	// be gone when the command returns. Every other case creates nothing.
	created bool
}

func TestBadInputTable(t *testing.T) {
	ctx := context.Background()
	start := time.Now()

	// Targets: a running pod, two pods under one label, a pending pod, a
	// finished pod, a pod whose container crash-loops, a pod in a namespace
	// that enforces Pod Security "restricted", a pod on a Windows node, a
	// deployment without pods.
	relSpinPod(t, namespace, "bad-target", "ktalpha", map[string]string{"rel-bad": "one"})
	relSpinPod(t, namespace, "bad-pair-1", "ktbravo", map[string]string{"rel-bad-pair": "yes"})
	relSpinPod(t, namespace, "bad-pair-2", "ktdemo", map[string]string{"rel-bad-pair": "yes"})
	t.Cleanup(func() {
		relDeletePods("bad-target", "bad-pair-1", "bad-pair-2", "bad-pending", "bad-done", "bad-crash")
	})
	relMustCreate(t, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "bad-pending", Namespace: namespace},
		Spec: corev1.PodSpec{
			NodeSelector: map[string]string{"ktrace.dev/no-such-node": "true"},
			Containers:   []corev1.Container{{Name: "app", Image: workloadImage, ImagePullPolicy: corev1.PullNever}},
		},
	})
	relMustCreate(t, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "bad-done", Namespace: namespace},
		Spec: corev1.PodSpec{
			NodeName: nodeName, RestartPolicy: corev1.RestartPolicyNever, TerminationGracePeriodSeconds: ptr.To(int64(1)),
			Containers: []corev1.Container{{Name: "app", Image: workloadImage, ImagePullPolicy: corev1.PullNever, Command: []string{"/bin/true"}}},
		},
	})
	relMustCreate(t, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "bad-crash", Namespace: namespace},
		Spec: corev1.PodSpec{
			NodeName: nodeName, TerminationGracePeriodSeconds: ptr.To(int64(1)),
			Containers: []corev1.Container{{Name: "app", Image: workloadImage, ImagePullPolicy: corev1.PullNever,
				Command: []string{"/bin/sh", "-c", "exit 3"}}},
		},
	})
	waitPhase(t, "bad-done", corev1.PodSucceeded)
	relWaitCrashing(t, "bad-crash")

	restricted := relNamespace(t, "restricted", map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
	relCreateRunning(t, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "locked", Namespace: restricted},
		Spec: corev1.PodSpec{
			NodeName:                      nodeName,
			TerminationGracePeriodSeconds: ptr.To(int64(1)),
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To(int64(65534)),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Containers: []corev1.Container{{
				Name: "app", Image: workloadImage, ImagePullPolicy: corev1.PullNever,
				Command: []string{"/usr/bin/ktalpha", "spin"},
				SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
			}},
		},
	})

	winNode, winPod := relWindowsTarget(t)

	_, err := client.AppsV1().Deployments(namespace).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "bad-idle"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(0)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"rel-bad": "idle"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"rel-bad": "idle"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: workloadImage, ImagePullPolicy: corev1.PullNever}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.AppsV1().Deployments(namespace).Delete(ctx, "bad-idle", metav1.DeleteOptions{}) })

	// A user who may do everything node mode needs except attach.
	noAttach := "system:serviceaccount:" + namespace + ":bad-noattach"
	relServiceAccountWithRole(t, "bad-noattach", []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "create", "delete"}},
	})
	t.Logf("fixtures ready in %s", time.Since(start).Round(time.Millisecond))

	sched := []string{"--hook", "sched"}
	with := func(a ...string) []string { return append(a, sched...) }
	cases := []relBadCase{
		{name: "unknown hook", args: []string{"pod/bad-target", "--hook", "nope"},
			want: []string{`unknown hook "nope"`, "choose one of", "sched", "kubectl trace hooks"}},
		{name: "missing hook", args: []string{"pod/bad-target"},
			want: []string{"--hook is required", "kubectl trace hooks"}},
		{name: "arg not key=value", args: with("pod/bad-target", "--arg", "nokv"),
			want: []string{`--arg "nokv" is not key=value`}},
		{name: "arg the hook does not take", args: []string{"pod/bad-target", "--hook", "syscalls", "--arg", "bogus=1"},
			want: []string{`has no parameter "bogus"`, "it takes syscalls", "kubectl trace hooks syscalls"}},
		{name: "arg with a bad value", args: []string{"pod/bad-target", "--hook", "syscall-top", "--arg", "interval=xyz"},
			want: []string{"--arg interval=xyz", "want a duration such as 1s"}},
		{name: "arg given twice", args: []string{"pod/bad-target", "--hook", "syscalls", "--arg", "syscalls=read", "--arg", "syscalls=write"},
			want: []string{"--arg syscalls is given twice"}},
		{name: "syscall the node kernel lacks", args: []string{"pod/bad-target", "--hook", "syscalls", "--arg", "syscalls=notacall", "--duration", "5s"},
			want: []string{"no syscall event for notacall", "such as openat"}, created: true},
		{name: "duration not a duration", args: with("pod/bad-target", "--duration", "soon"),
			want: []string{`invalid argument "soon" for "--duration"`, `like "30s"`}},
		{name: "negative duration", args: with("pod/bad-target", "--duration", "-5s"),
			want: []string{"--duration -5s is negative", "such as 10s"}},
		{name: "selector that does not parse", args: with("-l", "app in ("),
			want: []string{`-l "app in (" is not a label selector`, "write it like -l app=web"}},
		{name: "selector that matches nothing", args: with("-l", "rel-bad=nothing"),
			want: []string{"no running pod of -l rel-bad=nothing", "kubectl get pods -l rel-bad=nothing"}},
		{name: "namespace that does not exist", args: with("pod/bad-target", "-n", "ktrace-no-such-ns"),
			want:   []string{`namespace "ktrace-no-such-ns" not found`},
			reject: []string{`not found in namespace "ktrace-no-such-ns"`, "get namespaces -n"}},
		{name: "pod that does not exist", args: with("pod/nope"),
			want: []string{`pod "nope" not found in namespace "` + namespace + `"`, "kubectl get pods -n " + namespace}},
		{name: "bare name of a pod that does not exist", args: with("nope"),
			want: []string{`pod "nope" not found`}},
		{name: "container not in the pod", args: with("pod/bad-target", "-c", "nope"),
			want: []string{`container "nope" not found in pod ` + namespace + `/bad-target`, "choose one of: app"}},
		{name: "pod Pending", args: with("pod/bad-pending"),
			want: []string{"is Pending, not Running", "kubectl wait --for=condition=Ready pod/bad-pending"}},
		{name: "pod Succeeded", args: with("pod/bad-done"),
			want: []string{"has finished (Succeeded)", "only running containers can be traced"}},
		{name: "container crash-looping", args: with("pod/bad-crash"),
			want: []string{`container "app" of pod ` + namespace + `/bad-crash is not running`, "only running containers can be traced"}},
		{name: "Windows node", args: with("pod/" + winPod),
			want: []string{`node "` + winNode + `" runs windows`, "needs a Linux node"}},
		{name: "image that cannot be pulled", args: with("pod/bad-target", "--image", "ktrace.local/nope:v1", "--start-timeout", "2m"),
			want: []string{"ImagePull", "check --image"}, created: true},
		{name: "namespace enforcing Pod Security restricted", args: with("-n", restricted, "pod/locked"),
			want: []string{`enforces Pod Security level "restricted"`, "hostPID", "--helper-namespace",
				"kubectl label namespace " + restricted + " pod-security.kubernetes.io/enforce=privileged"}},
		{name: "ephemeral mode in a restricted namespace", args: with("-n", restricted, "pod/locked", "--mode", "ephemeral"),
			want: []string{`enforces Pod Security level "restricted"`, "--helper-namespace", "pod-security.kubernetes.io/enforce=privileged"}},
		{name: "user without pods/attach", args: with("pod/bad-target", "--as", noAttach),
			want: []string{"you may not create pods/attach", `in namespace "` + namespace + `"`, "docs/security.md", "--helper-namespace"}},
		{name: "ephemeral mode without pods/ephemeralcontainers", args: with("pod/bad-target", "--as", noAttach, "--mode", "ephemeral"),
			want: []string{"you may not patch pods/ephemeralcontainers, create pods/attach"},
			// --mode ephemeral refuses --helper-namespace: the hint must not send the user there.
			reject: []string{"--helper-namespace"}},
		{name: "output format unknown", args: with("pod/bad-target", "-o", "yaml"),
			want: []string{`hook "sched" cannot write -o "yaml"`, "choose one of text, json"}},
		{name: "pcap from a hook without packets", args: with("pod/bad-target", "-o", "pcap"),
			want: []string{`hook "sched" cannot write -o "pcap"`, "choose one of text, json"}},
		{name: "pcap of several targets without --output-dir", args: []string{"-l", "rel-bad-pair=yes", "--hook", "tcpdump", "-o", "pcap"},
			want: []string{"-o pcap with 2 target(s) or a selector needs --output-dir DIR"}},
		{name: "negative max-events", args: with("pod/bad-target", "--max-events", "-1"),
			want: []string{"--max-events -1 is negative", "or 0 for no limit"}},
		{name: "max-events not a number", args: with("pod/bad-target", "--max-events", "many"),
			want: []string{`invalid argument "many" for "--max-events"`}},
		{name: "max-size not a size", args: with("pod/bad-target", "--max-size", "lots"),
			want: []string{`--max-size "lots" is not a size`, "100Mi"}},
		{name: "negative max-size", args: with("pod/bad-target", "--max-size", "-5Mi"),
			want: []string{`--max-size "-5Mi"`, "100Mi"}},
		{name: "unknown mode", args: with("pod/bad-target", "--mode", "sideways"),
			want: []string{`--mode "sideways"`, "choose node", "or ephemeral"}},
		{name: "helper namespace with ephemeral mode", args: with("pod/bad-target", "--mode", "ephemeral", "--helper-namespace", namespace),
			want: []string{"--helper-namespace has no effect with --mode ephemeral"}},
		{name: "helper namespace that does not exist", args: with("pod/bad-target", "--helper-namespace", "ktrace-no-such-ns"),
			want: []string{`namespace "ktrace-no-such-ns" not found`, "--helper-namespace"}},
		{name: "-A without -l", args: with("-A", "pod/bad-target"),
			want: []string{"-A needs -l"}},
		{name: "target and -l together", args: with("pod/bad-target", "-l", "rel-bad=one"),
			want: []string{"give either a target or -l, not both"}},
		{name: "no target", args: sched,
			want: []string{"name a target", "pod/NAME"}},
		{name: "kind that cannot be traced, missing", args: with("configmap/x"),
			want: []string{`configmap "x" not found`}},
		{name: "kind that cannot be traced, present", args: with("configmap/kube-root-ca.crt"),
			want:   []string{"configmap/kube-root-ca.crt"},
			reject: []string{"not implemented", "*v1."}},
		{name: "node that does not exist", args: with("node/ktrace-no-such-node"),
			want:   []string{"ktrace-no-such-node"},
			reject: []string{"in namespace", "get nodes -n"}},
		{name: "a whole node with a container", args: with("node/"+nodeName, "-c", "app"),
			want: []string{"-c app names a container", "drop -c"}},
		{name: "deployment with no running pods", args: with("deploy/bad-idle"),
			want: []string{"no running pod of deployment/bad-idle", "kubectl get pods -l rel-bad=idle"}},
		{name: "color unknown", args: with("pod/bad-target", "--color", "purple"),
			want: []string{`--color "purple"`, "choose auto, always or never"}},
		{name: "start-timeout zero", args: with("pod/bad-target", "--start-timeout", "0"),
			want: []string{"--start-timeout 0s must be positive"}},
		{name: "image empty", args: with("pod/bad-target", "--image", ""),
			want: []string{"--image is empty"}},
		{name: "unknown flag", args: with("pod/bad-target", "--bogus-flag"),
			want: []string{"unknown flag: --bogus-flag", "kubectl trace --help"}},
		{name: "exec without --", args: []string{"exec", "pod/bad-target", "ip", "addr"},
			want: []string{"give the command after --"}},
		{name: "exec with no command", args: []string{"exec", "pod/bad-target", "--"},
			want: []string{"give the command after --"}},
		{name: "exec with a bad --ns", args: []string{"exec", "pod/bad-target", "--ns", "net,bogus", "--", "ip", "addr"},
			want: []string{`"bogus" is not a namespace`, "choose from cgroup, ipc, mnt, net, pid, uts"}},
		{name: "exec -i with several targets", args: []string{"exec", "-i", "-l", "rel-bad-pair=yes", "--", "cat"},
			want: []string{"-i needs one target, and 2 match", "name one pod"}},
		{name: "exec in a pending pod", args: []string{"exec", "pod/bad-pending", "--", "ip", "addr"},
			want: []string{"is Pending, not Running"}},
		{name: "exec without pods/attach", args: []string{"exec", "pod/bad-target", "--as", noAttach, "--", "ip", "addr"},
			want: []string{"you may not create pods/attach", "pods/exec"}},
	}
	watched := []string{namespace, restricted}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := relPodSnapshot(t, watched...)
			w := relWatchPods(t, watched...)
			r := trace(t, c.args...)
			added, ephemeral := w.stop()
			if r.code == 0 {
				t.Errorf("exit 0 for bad input")
			}
			for _, s := range c.want {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr lacks %q", s)
				}
			}
			for _, s := range c.reject {
				if strings.Contains(r.stderr, s) {
					t.Errorf("stderr has %q", s)
				}
			}
			if !strings.Contains(r.stderr, "error: ") {
				t.Errorf("stderr has no error line")
			}
			if r.stdout != "" {
				t.Errorf("stdout is not empty: %.200q", r.stdout)
			}
			if len(ephemeral) != 0 {
				t.Errorf("ephemeral container added to %v", ephemeral)
			}
			if c.created {
				if len(added) == 0 {
					t.Logf("note: no helper was created (the check moved before creation?)")
				}
			} else if len(added) != 0 {
				t.Errorf("pods created while refusing: %v", added)
			}
			if left := relHelperPodsIn(t, watched...); len(left) != 0 {
				t.Errorf("helper pods left: %v", left)
			}
			if d := relDiffSnapshots(before, relPodSnapshot(t, watched...)); len(d) != 0 {
				t.Errorf("pods changed: %v", d)
			}
			if left := relInstancesOf(t, relSessionIDs(r.stderr)); len(left) != 0 {
				t.Errorf("tracefs instances left: %v", left)
			}
		})
	}
	t.Logf("%d bad inputs in %s", len(cases), time.Since(start).Round(time.Millisecond))
}

func relMustCreate(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	if _, err := client.CoreV1().Pods(pod.Namespace).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// relWaitCrashing waits until the pod runs (phase) but its container does not:
// it exited and waits to be restarted.
func relWaitCrashing(t *testing.T, name string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		p, err := client.CoreV1().Pods(namespace).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil && p.Status.Phase == corev1.PodRunning && len(p.Status.ContainerStatuses) == 1 &&
			p.Status.ContainerStatuses[0].RestartCount > 0 && p.Status.ContainerStatuses[0].State.Running == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("pod %s did not crash-loop within 90s", name)
}

// relWindowsTarget makes a Node object labelled kubernetes.io/os=windows (no
// kubelet behind it: it stays NotReady; unschedulable and tainted so that
// nothing else lands there; named to sort after the real node, which the
// suites pick by list order) and a pod bound to it whose status says it
// runs, set through the status subresource as a kubelet would. The plugin
// then meets the pod as running and must refuse the node. Both are removed
// when the test ends.
func relWindowsTarget(t *testing.T) (node, pod string) {
	t.Helper()
	ctx := context.Background()
	node = "zz-ktrace-e2e-windows-" + krand.String(5)
	_, err := client.CoreV1().Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: node, Labels: map[string]string{
			corev1.LabelOSStable: "windows", corev1.LabelArchStable: "amd64", "ktrace.dev/fake-node": "true",
		}},
		Spec: corev1.NodeSpec{
			Unschedulable: true,
			Taints:        []corev1.Taint{{Key: "ktrace.dev/fake-node", Value: "true", Effect: corev1.TaintEffectNoSchedule}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod = "bad-windows"
	t.Cleanup(func() {
		_ = client.CoreV1().Pods(namespace).Delete(ctx, pod, metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))})
		_ = client.CoreV1().Nodes().Delete(ctx, node, metav1.DeleteOptions{})
	})
	created, err := client.CoreV1().Pods(namespace).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: pod, Namespace: namespace},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			TerminationGracePeriodSeconds: ptr.To(int64(0)),
			Containers:                    []corev1.Container{{Name: "app", Image: "mcr.microsoft.com/windows/nanoserver:ltsc2022"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 32)
	_, _ = rand.Read(id)
	now := metav1.Now()
	created.Status = corev1.PodStatus{
		Phase:      corev1.PodRunning,
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}},
		StartTime:  &now,
		ContainerStatuses: []corev1.ContainerStatus{{
			Name: "app", Ready: true, Started: ptr.To(true),
			Image: "mcr.microsoft.com/windows/nanoserver:ltsc2022", ImageID: "sha256:" + hex.EncodeToString(id),
			ContainerID: "containerd://" + hex.EncodeToString(id),
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		}},
	}
	if _, err := client.CoreV1().Pods(namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("setting the pod on the fake Windows node to Running: %v", err)
	}
	return node, pod
}

// relServiceAccountWithRole makes a ServiceAccount in the suite's namespace
// bound to a Role of that name with rules.
func relServiceAccountWithRole(t *testing.T, name string, rules []rbacv1.PolicyRule) {
	t.Helper()
	ctx := context.Background()
	if _, err := client.CoreV1().ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.RbacV1().Roles(namespace).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.RbacV1().RoleBindings(namespace).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: namespace}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
