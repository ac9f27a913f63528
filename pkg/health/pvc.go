package health

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// pvc is kstatus's rule for a PersistentVolumeClaim: ready once Bound to a
// volume. Pending waits (a provisioner at work, a StorageClass that binds
// when the first pod uses the claim); why is in its events (FailedBinding,
// ProvisioningFailed, WaitForFirstConsumer), which a timeout's report
// lists. Lost fails: its volume is gone.
func pvc(obj *unstructured.Unstructured, _ time.Time) Status {
	volume := str(obj, "spec", "volumeName")
	switch phase := str(obj, "status", "phase"); phase {
	case "Bound":
		return Status{Current, "Bound to PersistentVolume " + volume}
	case "Lost":
		return Status{Failed, fmt.Sprintf("Lost: its PersistentVolume %s no longer exists", orNone(volume))}
	default:
		return Status{InProgress, orNone(phase) + ", waiting to be bound to a volume"}
	}
}
