package health

import (
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// statefulSet is `kubectl rollout status` for a StatefulSet: the
// controller observed its generation, every replica is ready, and the
// update revision has rolled out (up to the partition, when one is set).
// With updateStrategy OnDelete the pods are replaced by hand: it is ready
// once observed.
func statefulSet(obj *unstructured.Unstructured, _ time.Time) Status {
	s, err := convert[appsv1.StatefulSet](obj)
	if err != nil {
		return badObject(err)
	}
	if s.Status.ObservedGeneration == 0 || s.Generation > s.Status.ObservedGeneration {
		return notObserved(s.Generation)
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
