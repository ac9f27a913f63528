package health

import (
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// generic is kstatus's conventions for any kind without a rule of its own
// (custom resources, ConfigMaps): a status.observedGeneration behind
// metadata.generation is in progress (its controller has not seen the
// change yet); Stalled=True fails; Reconciling=True is in progress; then
// the Ready condition decides. An object that reports no Ready condition
// is ready once it exists.
//
// Written here rather than taken from sigs.k8s.io/cli-utils'
// pkg/kstatus/status: these are the few lines of it that apply, since the
// kinds above judge differently from it (a Failed Pod, a Job, a
// LoadBalancer's address, the workloads' messages).
func generic(obj *unstructured.Unstructured, _ time.Time) Status {
	if og, found := ObservedGeneration(obj); found && og < obj.GetGeneration() {
		return notObserved(obj.GetGeneration())
	}
	conds := Conditions(obj)
	for _, c := range conds {
		if c.Type == "Stalled" && c.Status == "True" {
			return Status{Failed, c.String()}
		}
	}
	for _, c := range conds {
		if c.Type == "Reconciling" && c.Status == "True" {
			return Status{InProgress, c.String()}
		}
	}
	for _, c := range conds {
		if c.Type == "Ready" {
			if c.Status == "True" {
				return Status{Current, "Ready"}
			}
			return Status{InProgress, c.String()}
		}
	}
	return Status{Current, "exists"}
}
