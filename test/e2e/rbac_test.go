//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
)

// relMinimalRules is the least a user needs to trace pods of one namespace in
// node mode (the helper runs in that namespace): read the targets (get;
// list for -l and workloads), create, watch start and delete the helper
// (create, get, delete), and attach to it (create on pods/attach, which also
// covers the WebSocket upgrade, a GET, since Kubernetes 1.30). Nothing
// else: no events (the start-up warnings are a courtesy), no nodes (the
// Linux check is skipped), no namespaces (the Pod Security check is left to
// admission). SelfSubjectAccessReview is every authenticated user's
// (system:basic-user).
var relMinimalRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "create", "delete"}},
	{APIGroups: []string{""}, Resources: []string{"pods/attach"}, Verbs: []string{"create"}},
}

func TestRBACMinimalRole(t *testing.T) {
	ctx := context.Background()
	const sa = "rel-rbac"
	relSpinPod(t, namespace, "rbac-target", "ktalpha", map[string]string{"rel-rbac": "target"})
	t.Cleanup(func() { relDeletePods("rbac-target") })
	relServiceAccountWithRole(t, sa, relMinimalRules)
	user := "system:serviceaccount:" + namespace + ":" + sa

	// The optional rights really are absent: the successful trace below
	// runs without them.
	for _, ra := range []authorizationv1.ResourceAttributes{
		{Verb: "get", Resource: "nodes", Name: nodeName},
		{Verb: "get", Resource: "namespaces", Name: namespace},
		{Verb: "list", Resource: "events", Namespace: namespace},
		{Verb: "get", Resource: "pods", Subresource: "attach", Namespace: namespace},
	} {
		if relAllowed(t, user, ra) {
			t.Fatalf("%s may %s %s/%s: the test's user has more than the minimal Role", user, ra.Verb, ra.Resource, ra.Subresource)
		}
	}

	tok, err := client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(600))},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := relTokenKubeconfig(t, tok.Status.Token)

	t.Run("the minimal Role traces", func(t *testing.T) {
		r := trace(t, "pod/rbac-target", "--hook", "sched", "--duration", "3s", "--kubeconfig", kubeconfig)
		if r.code != 0 {
			t.Fatalf("exit %d with the minimal Role", r.code)
		}
		if r.stdout == "" {
			t.Errorf("no trace data")
		}
		if !summaryRow(r.stderr, "rbac-target/app", "duration reached") {
			t.Errorf("no summary row")
		}
		relAssertClean(t, r.stderr)
	})

	t.Run("the minimal Role traces a selector", func(t *testing.T) {
		r := trace(t, "-l", "rel-rbac=target", "--hook", "sched", "--duration", "3s", "--kubeconfig", kubeconfig)
		if r.code != 0 {
			t.Fatalf("exit %d with the minimal Role and -l", r.code)
		}
		if !strings.Contains(r.stdout, "rbac-target/app ") {
			t.Errorf("no trace data of rbac-target")
		}
		relAssertClean(t, r.stderr)
	})

	// Each right of the Role, taken away, fails in preflight (or, for
	// get/list, when the target is read) and creates nothing.
	drop := []struct {
		name     string
		resource string
		verb     string
		args     []string
		want     string
	}{
		{name: "without pods/attach", resource: "pods/attach", verb: "create", args: []string{"pod/rbac-target"},
			want: `you may not create pods/attach in namespace "` + namespace + `"`},
		{name: "without delete pods", resource: "pods", verb: "delete", args: []string{"pod/rbac-target"},
			want: `you may not delete pods in namespace "` + namespace + `"`},
		{name: "without create pods", resource: "pods", verb: "create", args: []string{"pod/rbac-target"},
			want: `you may not create pods in namespace "` + namespace + `"`},
		{name: "without list pods", resource: "pods", verb: "list", args: []string{"-l", "rel-rbac=target"},
			want: `cannot list resource "pods"`},
	}
	for _, d := range drop {
		t.Run(d.name, func(t *testing.T) {
			rules := relWithoutVerb(relMinimalRules, d.resource, d.verb)
			res, sub, _ := strings.Cut(d.resource, "/")
			ra := authorizationv1.ResourceAttributes{Verb: d.verb, Resource: res, Subresource: sub, Namespace: namespace}
			relSetRole(t, sa, rules)
			t.Cleanup(func() {
				relSetRole(t, sa, relMinimalRules)
				relWaitAllowed(t, user, ra, true)
			})
			relWaitAllowed(t, user, ra, false)

			before := relPodSnapshot(t, namespace)
			w := relWatchPods(t, namespace)
			r := trace(t, append(d.args, "--hook", "sched", "--duration", "3s", "--kubeconfig", kubeconfig)...)
			added, _ := w.stop()
			if r.code == 0 {
				t.Fatalf("exit 0 %s", d.name)
			}
			if !strings.Contains(r.stderr, d.want) {
				t.Errorf("stderr lacks %q", d.want)
			}
			if len(added) != 0 {
				t.Errorf("pods created: %v", added)
			}
			if diff := relDiffSnapshots(before, relPodSnapshot(t, namespace)); len(diff) != 0 {
				t.Errorf("pods changed: %v", diff)
			}
			relAssertClean(t, r.stderr)
		})
	}
}

// relTokenKubeconfig writes a kubeconfig with the admin kubeconfig's server
// and CA and the token as the only credential.
func relTokenKubeconfig(t *testing.T, token string) string {
	t.Helper()
	admin, err := clientcmd.LoadFromFile(os.Getenv("KUBECONFIG"))
	if err != nil {
		t.Fatal(err)
	}
	ctxName := admin.CurrentContext
	cluster := admin.Clusters[admin.Contexts[ctxName].Cluster]
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: cluster.Server, CertificateAuthorityData: cluster.CertificateAuthorityData,
		CertificateAuthority: cluster.CertificateAuthority}
	cfg.AuthInfos["sa"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["sa"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "sa", Namespace: namespace}
	cfg.CurrentContext = "sa"
	path := filepath.Join(t.TempDir(), "sa.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func relAllowed(t *testing.T, user string, ra authorizationv1.ResourceAttributes) bool {
	t.Helper()
	sar, err := client.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
			ResourceAttributes: &ra},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return sar.Status.Allowed
}

// relWaitAllowed waits until the authorizer has seen a Role change: until
// user may (want) or may not do ra.
func relWaitAllowed(t *testing.T, user string, ra authorizationv1.ResourceAttributes, want bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for relAllowed(t, user, ra) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: allowed to %s %s/%s is still %v 30s after the Role changed", user, ra.Verb, ra.Resource, ra.Subresource, !want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func relSetRole(t *testing.T, name string, rules []rbacv1.PolicyRule) {
	t.Helper()
	role, err := client.RbacV1().Roles(namespace).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	role.Rules = rules
	if _, err := client.RbacV1().Roles(namespace).Update(context.Background(), role, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func relWithoutVerb(rules []rbacv1.PolicyRule, resource, verb string) []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	for _, r := range rules {
		r = *r.DeepCopy()
		if len(r.Resources) == 1 && r.Resources[0] == resource {
			var verbs []string
			for _, v := range r.Verbs {
				if v != verb {
					verbs = append(verbs, v)
				}
			}
			if len(verbs) == 0 {
				continue
			}
			r.Verbs = verbs
		}
		out = append(out, r)
	}
	return out
}
