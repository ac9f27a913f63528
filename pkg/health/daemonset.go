package health

import (
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// daemonSet is `kubectl rollout status` for a DaemonSet: the controller
// observed its generation and every scheduled pod is updated and
// available. With updateStrategy OnDelete it is ready once observed.
func daemonSet(obj *unstructured.Unstructured, _ time.Time) Status {
	d, err := convert[appsv1.DaemonSet](obj)
	if err != nil {
		return badObject(err)
	}
	if d.Generation > d.Status.ObservedGeneration {
		return notObserved(d.Generation)
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
