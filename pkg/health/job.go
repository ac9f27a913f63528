package health

import (
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// job waits for a Job to complete (Complete=True) and fails when it has
// failed (Failed=True, its reason and message). kstatus counts a Job
// current once it started; a put that runs a migration Job wants it done.
func job(obj *unstructured.Unstructured, _ time.Time) Status {
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
