package health

import (
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// crd waits for a CustomResourceDefinition to be Established, so objects
// of its kind can be applied next. NamesAccepted=False (its names clash
// with another CRD's) and Established=False for any reason but Installing
// fail it (kstatus).
func crd(obj *unstructured.Unstructured, _ time.Time) Status {
	for _, c := range Conditions(obj) {
		switch {
		case c.Type == "NamesAccepted" && c.Status == "False":
			return Status{Failed, c.String()}
		case c.Type == "Established" && c.Status == "True":
			return Status{Current, "Established"}
		case c.Type == "Established" && c.Status == "False" && c.Reason != "Installing":
			return Status{Failed, c.String()}
		}
	}
	return Status{InProgress, "waiting for condition Established"}
}
