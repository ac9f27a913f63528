package kube

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
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

// Status is a rule's verdict on one object.
type Status struct {
	State   State
	Message string
}

// Rule judges whether an object is ready.
type Rule interface {
	Status(obj *unstructured.Unstructured) Status
}

// RuleFor picks the rule of obj's kind: the kubectl rollout status rules for
// Deployments, StatefulSets and DaemonSets, completion for Jobs,
// Established for CRDs, a Ready condition for anything that reports
// status.conditions, and existence for the rest.
func RuleFor(gk schema.GroupKind) Rule {
	switch gk {
	case gkDeployment:
		return DeploymentRule{}
	case gkStatefulSet:
		return StatefulSetRule{}
	case gkDaemonSet:
		return DaemonSetRule{}
	case gkJob:
		return JobRule{}
	case gkCRD:
		return ConditionRule{Type: "Established"}
	}
	return ConditionRule{Type: "Ready", Optional: true}
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

// DeploymentRule is kubectl rollout status for Deployments.
type DeploymentRule struct{}

// Status implements Rule.
func (DeploymentRule) Status(obj *unstructured.Unstructured) Status {
	d, err := convert[appsv1.Deployment](obj)
	if err != nil {
		return badObject(err)
	}
	if d.Generation > d.Status.ObservedGeneration {
		return Status{InProgress, fmt.Sprintf("waiting for the controller to observe generation %d", d.Generation)}
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" {
			return Status{Failed, fmt.Sprintf("Progressing=False ProgressDeadlineExceeded: %s", c.Message)}
		}
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	switch {
	case s.UpdatedReplicas < want:
		return Status{InProgress, fmt.Sprintf("%d/%d updated", s.UpdatedReplicas, want)}
	case s.Replicas > s.UpdatedReplicas:
		return Status{InProgress, fmt.Sprintf("%d/%d updated, %d old replicas pending termination", s.UpdatedReplicas, want, s.Replicas-s.UpdatedReplicas)}
	case s.AvailableReplicas < s.UpdatedReplicas:
		return Status{InProgress, fmt.Sprintf("%d/%d updated, %d/%d available", s.UpdatedReplicas, want, s.AvailableReplicas, want)}
	}
	return Status{Current, fmt.Sprintf("%d/%d available", s.AvailableReplicas, want)}
}

// StatefulSetRule is kubectl rollout status for StatefulSets.
type StatefulSetRule struct{}

// Status implements Rule.
func (StatefulSetRule) Status(obj *unstructured.Unstructured) Status {
	s, err := convert[appsv1.StatefulSet](obj)
	if err != nil {
		return badObject(err)
	}
	if s.Status.ObservedGeneration == 0 || s.Generation > s.Status.ObservedGeneration {
		return Status{InProgress, fmt.Sprintf("waiting for the controller to observe generation %d", s.Generation)}
	}
	want := int32(1)
	if s.Spec.Replicas != nil {
		want = *s.Spec.Replicas
	}
	if s.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		return Status{Current, "updateStrategy OnDelete: not waiting for pods to be replaced"}
	}
	if s.Status.ReadyReplicas < want {
		return Status{InProgress, fmt.Sprintf("%d/%d ready", s.Status.ReadyReplicas, want)}
	}
	if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil && *ru.Partition > 0 {
		if s.Status.UpdatedReplicas < want-*ru.Partition {
			return Status{InProgress, fmt.Sprintf("%d/%d updated (partition %d)", s.Status.UpdatedReplicas, want-*ru.Partition, *ru.Partition)}
		}
		return Status{Current, fmt.Sprintf("%d/%d updated (partition %d)", s.Status.UpdatedReplicas, want-*ru.Partition, *ru.Partition)}
	}
	if s.Status.UpdateRevision != s.Status.CurrentRevision {
		return Status{InProgress, fmt.Sprintf("%d/%d updated", s.Status.UpdatedReplicas, want)}
	}
	return Status{Current, fmt.Sprintf("%d/%d ready", s.Status.ReadyReplicas, want)}
}

// DaemonSetRule is kubectl rollout status for DaemonSets.
type DaemonSetRule struct{}

// Status implements Rule.
func (DaemonSetRule) Status(obj *unstructured.Unstructured) Status {
	d, err := convert[appsv1.DaemonSet](obj)
	if err != nil {
		return badObject(err)
	}
	if d.Generation > d.Status.ObservedGeneration {
		return Status{InProgress, fmt.Sprintf("waiting for the controller to observe generation %d", d.Generation)}
	}
	if d.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType {
		return Status{Current, "updateStrategy OnDelete: not waiting for pods to be replaced"}
	}
	s := d.Status
	if s.UpdatedNumberScheduled < s.DesiredNumberScheduled {
		return Status{InProgress, fmt.Sprintf("%d/%d updated", s.UpdatedNumberScheduled, s.DesiredNumberScheduled)}
	}
	if s.NumberAvailable < s.DesiredNumberScheduled {
		return Status{InProgress, fmt.Sprintf("%d/%d available", s.NumberAvailable, s.DesiredNumberScheduled)}
	}
	return Status{Current, fmt.Sprintf("%d/%d available", s.NumberAvailable, s.DesiredNumberScheduled)}
}

// JobRule waits for a Job to complete and fails when it has failed.
type JobRule struct{}

// Status implements Rule.
func (JobRule) Status(obj *unstructured.Unstructured) Status {
	j, err := convert[batchv1.Job](obj)
	if err != nil {
		return badObject(err)
	}
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return Status{Current, fmt.Sprintf("complete (%d succeeded)", j.Status.Succeeded)}
		case batchv1.JobFailed:
			return Status{Failed, fmt.Sprintf("Failed %s: %s", c.Reason, c.Message)}
		}
	}
	return Status{InProgress, fmt.Sprintf("%d active, %d succeeded, %d failed", j.Status.Active, j.Status.Succeeded, j.Status.Failed)}
}

// ConditionRule waits for the condition Type to be True. With Optional, an
// object without status.conditions is ready once it exists. Stalled=True
// fails (kstatus convention); a status.observedGeneration behind the
// generation is in progress.
type ConditionRule struct {
	Type     string
	Optional bool
}

// Status implements Rule.
func (r ConditionRule) Status(obj *unstructured.Unstructured) Status {
	if og, found := nestedInt(obj.Object, "status", "observedGeneration"); found && og < obj.GetGeneration() {
		return Status{InProgress, fmt.Sprintf("waiting for the controller to observe generation %d", obj.GetGeneration())}
	}
	conds := Conditions(obj)
	for _, c := range conds {
		if c.Type == "Stalled" && c.Status == "True" {
			return Status{Failed, c.String()}
		}
	}
	for _, c := range conds {
		if c.Type == r.Type {
			if c.Status == "True" {
				return Status{Current, c.Type}
			}
			return Status{InProgress, c.String()}
		}
	}
	if r.Optional {
		return Status{Current, "exists"}
	}
	return Status{InProgress, "waiting for condition " + r.Type}
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

// Conditions reads status.conditions of any object. A Secret's data quoted
// as JSON in a message is masked (MaskSecretData).
func Conditions(obj *unstructured.Unstructured) []Condition {
	list, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	var out []Condition
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			continue
		}
		str := func(k string) string { s, _ := m[k].(string); return s }
		out = append(out, Condition{str("type"), str("status"), str("reason"), MaskSecretData(str("message"))})
	}
	return out
}

// failingReasons are container states that do not heal without a change.
var failingReasons = map[string]bool{
	"ImagePullBackOff": true, "ErrImagePull": true, "CrashLoopBackOff": true,
	"CreateContainerConfigError": true, "InvalidImageName": true, "CreateContainerError": true,
}

// PodProblem returns why pod will not become ready by itself ("container
// app: ImagePullBackOff: ..."), or "" when nothing is known to be wrong.
func PodProblem(pod *corev1.Pod) string {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, cs := range list {
			if w := cs.State.Waiting; w != nil && failingReasons[w.Reason] {
				return fmt.Sprintf("container %s: %s: %s", cs.Name, w.Reason, strings.TrimSpace(w.Message))
			}
		}
	}
	return ""
}

// PodState describes a pod for a failure report: phase, unmet conditions,
// and each container's waiting or terminated reason.
func PodState(pod *corev1.Pod) string {
	parts := []string{string(pod.Status.Phase)}
	for _, c := range pod.Status.Conditions {
		if c.Status != corev1.ConditionTrue && c.Reason != "" {
			parts = append(parts, fmt.Sprintf("%s=%s %s: %s", c.Type, c.Status, c.Reason, c.Message))
		}
	}
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, cs := range list {
			switch {
			case cs.State.Waiting != nil:
				parts = append(parts, fmt.Sprintf("container %s waiting: %s %s", cs.Name, cs.State.Waiting.Reason, cs.State.Waiting.Message))
			case cs.State.Terminated != nil:
				t := cs.State.Terminated
				parts = append(parts, fmt.Sprintf("container %s terminated: %s (exit %d) %s", cs.Name, t.Reason, t.ExitCode, t.Message))
			}
			if t := cs.LastTerminationState.Terminated; t != nil {
				parts = append(parts, fmt.Sprintf("container %s last terminated: %s (exit %d), %d restarts", cs.Name, t.Reason, t.ExitCode, cs.RestartCount))
			}
		}
	}
	return strings.Join(parts, "; ")
}

// nestedInt reads an integer field whether it was decoded as int64 (the
// API machinery) or float64 (plain JSON).
func nestedInt(obj map[string]any, fields ...string) (int64, bool) {
	v, found, _ := unstructured.NestedFieldNoCopy(obj, fields...)
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
