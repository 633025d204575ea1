package session

// Kubernetes-visible names, in one place: cleanup finds helpers by these.
const (
	// LabelManagedBy marks every object the plugin creates.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is LabelManagedBy's value.
	ManagedByValue = "kubectl-trace"
	// LabelComponent tells helper pods from anything else the plugin may create.
	LabelComponent = "app.kubernetes.io/component"
	// ComponentHelper is LabelComponent's value on helper pods.
	ComponentHelper = "helper"
	// LabelSession carries the session id, shared by all helpers of one run.
	LabelSession = "kubectl-trace.dev/session"
	// AnnotationTargets lists the traced containers, for humans reading the pod.
	AnnotationTargets = "kubectl-trace.dev/targets"
	// AnnotationHook names the hook the helper runs.
	AnnotationHook = "kubectl-trace.dev/hook"

	// HelperNamePrefix starts every helper pod's name.
	HelperNamePrefix = "kubectl-trace-"
	// HelperContainerName is the tracer container's name in a helper pod.
	HelperContainerName = "tracer"
)

// HelperSelector selects every helper pod the plugin created.
func HelperSelector() string {
	return LabelManagedBy + "=" + ManagedByValue + "," + LabelComponent + "=" + ComponentHelper
}
