package health

import (
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// ingress follows kstatus: an Ingress is ready once it exists. Its address
// (status.loadBalancer.ingress) is the ingress controller's to publish,
// and many never do (a controller behind a NodePort, or one started with
// publishing off), so waiting for it would hang those puts; the address is
// reported when there is one.
func ingress(obj *unstructured.Unstructured, _ time.Time) Status {
	if addrs := loadBalancerAddresses(obj); len(addrs) > 0 {
		return Status{Current, "exists, at " + strings.Join(addrs, ", ")}
	}
	return Status{Current, "exists (no address published: not waited for)"}
}
