package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	psaapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"
)

// access is one permission a mode needs.
type access struct {
	verb, resource, subresource string
}

func (a access) String() string {
	if a.subresource != "" {
		return a.verb + " " + a.resource + "/" + a.subresource
	}
	return a.verb + " " + a.resource
}

// nodeModeAccess is what node mode does in the helper's namespace: create
// the helper, watch it start, attach to it, delete it.
var nodeModeAccess = []access{
	{verb: "create", resource: "pods"},
	{verb: "get", resource: "pods"},
	{verb: "create", resource: "pods", subresource: "attach"},
	{verb: "delete", resource: "pods"},
}

// nodeAccess is what tracing a whole node (node/NAME) needs besides node
// mode's: reading the node, to refuse a name that is none before a helper
// pod waits for it forever.
var nodeAccess = []access{{verb: "get", resource: "nodes"}}

// checkNodeAccess checks nodeAccess (cluster-scoped).
func checkNodeAccess(ctx context.Context, client kubernetes.Interface) error {
	err := checkAccessHint(ctx, client, "", nodeAccess, "or trace the node's pods instead (pod/NAME, -l, -A -l)")
	if err != nil {
		return fmt.Errorf("tracing a whole node: %w", err)
	}
	return nil
}

// ErrForbidden is wrapped by preflight errors about RBAC.
var ErrForbidden = errors.New("forbidden")

// checkAccess asks the API server whether the user may do each of needs in
// namespace, so a missing right fails before anything is created.
func checkAccess(ctx context.Context, client kubernetes.Interface, namespace string, needs []access) error {
	return checkAccessHint(ctx, client, namespace, needs, "or trace from a namespace where you have it (--helper-namespace)")
}

// checkAccessHint is checkAccess with the way out that fits the mode.
func checkAccessHint(ctx context.Context, client kubernetes.Interface, namespace string, needs []access, hint string) error {
	// The reviews go out together: one at a time they were a round trip
	// each on the way to the first event.
	allowed := make([]bool, len(needs))
	errs := make([]error, len(needs))
	var wg sync.WaitGroup
	for i, n := range needs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
				ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: namespace, Verb: n.verb, Resource: n.resource, Subresource: n.subresource,
				},
			}}
			got, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
			if err != nil {
				errs[i] = err
				return
			}
			allowed[i] = got.Status.Allowed
		}()
	}
	wg.Wait()
	var denied []string
	for i, n := range needs {
		if err := errs[i]; err != nil {
			if apierrors.IsForbidden(err) || apierrors.IsNotFound(err) {
				// The server will not say; the real requests will.
				return nil
			}
			return fmt.Errorf("checking whether you may %s in namespace %q: %w", n, namespace, err)
		}
		if !allowed[i] {
			denied = append(denied, n.String())
		}
	}
	if len(denied) > 0 {
		where := fmt.Sprintf("in namespace %q", namespace)
		if namespace == "" {
			where = "cluster-wide"
		}
		return fmt.Errorf("%w: you may not %s %s: ask a cluster admin for the Role in docs/security.md, %s",
			ErrForbidden, strings.Join(denied, ", "), where, hint)
	}
	return nil
}

// ErrPodSecurity is wrapped by preflight errors about Pod Security admission.
var ErrPodSecurity = errors.New("pod security")

// checkPodSecurity evaluates the helper pod against its namespace's enforced
// Pod Security level, with the same checks the admission plugin runs, and
// says which label or flag would let it in.
func checkPodSecurity(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod) error {
	ns, err := client.CoreV1().Namespaces().Get(ctx, pod.Namespace, metav1.GetOptions{})
	if apierrors.IsForbidden(err) {
		// Reading namespaces is often not allowed; admission will still
		// answer, and the start-up wait shows its message.
		return nil
	}
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("namespace %q not found: create it, or choose another with --helper-namespace", pod.Namespace)
	}
	if err != nil {
		return fmt.Errorf("getting namespace %q: %w", pod.Namespace, err)
	}
	privileged := psaapi.LevelVersion{Level: psaapi.LevelPrivileged, Version: psaapi.LatestVersion()}
	policy, errs := psaapi.PolicyToEvaluate(ns.Labels, psaapi.Policy{Enforce: privileged, Audit: privileged, Warn: privileged})
	if len(errs) > 0 {
		return fmt.Errorf("namespace %q has invalid Pod Security labels: %w", pod.Namespace, errs.ToAggregate())
	}
	if policy.Enforce.Level == psaapi.LevelPrivileged {
		return nil
	}
	evaluator, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks(), nil)
	if err != nil {
		return fmt.Errorf("loading the Pod Security checks: %w", err)
	}
	var forbidden []string
	for _, r := range evaluator.EvaluatePod(policy.Enforce, &pod.ObjectMeta, &pod.Spec) {
		if !r.Allowed {
			reason := r.ForbiddenReason
			if r.ForbiddenDetail != "" {
				reason += " (" + r.ForbiddenDetail + ")"
			}
			forbidden = append(forbidden, reason)
		}
	}
	if len(forbidden) == 0 {
		return nil
	}
	return fmt.Errorf("%w: namespace %q enforces Pod Security level %q, which forbids the helper pod: %s; "+
		"run the helper in a namespace that allows privileged pods with --helper-namespace, "+
		"or label this one: kubectl label namespace %s %s=privileged",
		ErrPodSecurity, pod.Namespace, policy.Enforce.Level, strings.Join(forbidden, "; "), pod.Namespace, psaapi.EnforceLevelLabel)
}

// preflight runs every check that can fail before the helper is created.
func preflight(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod) error {
	// Both checks are reads: they run together, and the access error, the
	// more basic one, wins when both fail.
	psa := make(chan error, 1)
	go func() { psa <- checkPodSecurity(ctx, client, pod) }()
	if err := checkAccess(ctx, client, pod.Namespace, nodeModeAccess); err != nil {
		<-psa
		return err
	}
	return <-psa
}
