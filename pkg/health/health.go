package health

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// State is where an object is on its way to ready.
type State int

// The states of an object.
const (
	InProgress State = iota
	Current          // ready
	Failed           // will not become ready without a change
)

func (s State) String() string {
	switch s {
	case Current:
		return "ready"
	case Failed:
		return "failed"
	}
	return "in progress"
}

// Status is a judge's verdict on one object: its state and, in one line,
// why (for the log, and for the error when it failed).
type Status struct {
	State   State
	Message string
}

// A Judge judges an object from its live state at time now. The rules of
// the kinds (For) read the object alone; an agent's judges remember what
// they saw (a failed attempt, since when a failure lasts), so take one per
// wait.
type Judge func(obj *unstructured.Unstructured, now time.Time) Status

// Well-known group kinds.
var (
	gkDeployment  = schema.GroupKind{Group: "apps", Kind: "Deployment"}
	gkStatefulSet = schema.GroupKind{Group: "apps", Kind: "StatefulSet"}
	gkDaemonSet   = schema.GroupKind{Group: "apps", Kind: "DaemonSet"}
	gkJob         = schema.GroupKind{Group: "batch", Kind: "Job"}
	gkPod         = schema.GroupKind{Kind: "Pod"}
	gkPVC         = schema.GroupKind{Kind: "PersistentVolumeClaim"}
	gkService     = schema.GroupKind{Kind: "Service"}
	gkIngress     = schema.GroupKind{Group: "networking.k8s.io", Kind: "Ingress"}
	gkCRD         = schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}
)

// For returns the rule of a kind: `kubectl rollout status` for
// Deployments, StatefulSets and DaemonSets, completion for Jobs and for
// Pods that run to completion, Bound for PersistentVolumeClaims, an
// address for Services of type LoadBalancer, Established for CRDs, and
// kstatus's conventions (Stalled, Reconciling, Ready, observedGeneration)
// for every other kind.
func For(gk schema.GroupKind) Judge {
	switch gk {
	case gkDeployment:
		return deployment
	case gkStatefulSet:
		return statefulSet
	case gkDaemonSet:
		return daemonSet
	case gkJob:
		return job
	case gkPod:
		return pod
	case gkPVC:
		return pvc
	case gkService:
		return service
	case gkIngress:
		return ingress
	case gkCRD:
		return crd
	}
	return generic
}

func convert[T any](obj *unstructured.Unstructured) (*T, error) {
	var out T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func badObject(err error) Status {
	return Status{Failed, "cannot read its status: " + err.Error()}
}

func notObserved(generation int64) Status {
	return Status{InProgress, fmt.Sprintf("waiting for the controller to observe generation %d", generation)}
}

// Condition is one entry of status.conditions.
type Condition struct {
	Type, Status, Reason, Message string
}

func (c Condition) String() string {
	s := c.Type + "=" + c.Status
	if c.Reason != "" {
		s += " " + c.Reason
	}
	if c.Message != "" {
		s += ": " + strings.TrimSpace(c.Message)
	}
	return s
}

// Conditions reads status.conditions of any object.
func Conditions(obj *unstructured.Unstructured) []Condition {
	list, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	var out []Condition
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			continue
		}
		str := func(k string) string { s, _ := m[k].(string); return s }
		out = append(out, Condition{str("type"), str("status"), str("reason"), str("message")})
	}
	return out
}

// condition is the status, reason and message of the condition typ, or
// empty strings when obj has none.
func condition(obj *unstructured.Unstructured, typ string) (status, reason, message string) {
	for _, c := range Conditions(obj) {
		if c.Type == typ {
			return c.Status, c.Reason, c.Message
		}
	}
	return "", "", ""
}

// ObservedGeneration reads status.observedGeneration, whether it was
// decoded as int64 (the API machinery) or float64 (plain JSON).
func ObservedGeneration(obj *unstructured.Unstructured) (int64, bool) {
	v, found, _ := unstructured.NestedFieldNoCopy(obj.Object, "status", "observedGeneration")
	switch n := v.(type) {
	case int64:
		return n, found
	case int:
		return int64(n), found
	case float64:
		return int64(n), found
	}
	return 0, false
}

func str(obj *unstructured.Unstructured, path ...string) string {
	s, _, _ := unstructured.NestedString(obj.Object, path...)
	return s
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
