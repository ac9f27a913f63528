package health

import (
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// deployment is `kubectl rollout status` for a Deployment: the controller
// observed its generation, every replica is updated and available and no
// old one is left; a Progressing=False ProgressDeadlineExceeded fails it.
func deployment(obj *unstructured.Unstructured, _ time.Time) Status {
	d, err := convert[appsv1.Deployment](obj)
	if err != nil {
		return badObject(err)
	}
	if d.Generation > d.Status.ObservedGeneration {
		return notObserved(d.Generation)
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
