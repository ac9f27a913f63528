package health

import (
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// service: a Service of type LoadBalancer is ready once its load balancer
// has an address (status.loadBalancer.ingress), which the cloud's
// controller sets; any other type is ready once it exists. kstatus waits
// for a clusterIP only, which the API server sets on create; a pipeline
// that goes on to call the address wants the address (Argo CD's rule).
func service(obj *unstructured.Unstructured, _ time.Time) Status {
	typ := str(obj, "spec", "type")
	if typ != "LoadBalancer" {
		return Status{Current, "exists"}
	}
	if addrs := loadBalancerAddresses(obj); len(addrs) > 0 {
		return Status{Current, "load balancer at " + strings.Join(addrs, ", ")}
	}
	return Status{InProgress, "waiting for the load balancer's address (status.loadBalancer.ingress)"}
}

// loadBalancerAddresses are the IPs and hostnames of
// status.loadBalancer.ingress (a Service's or an Ingress's).
func loadBalancerAddresses(obj *unstructured.Unstructured) []string {
	list, _, _ := unstructured.NestedSlice(obj.Object, "status", "loadBalancer", "ingress")
	var out []string
	for _, item := range list {
		m, _ := item.(map[string]any)
		for _, field := range []string{"ip", "hostname"} {
			if s, _ := m[field].(string); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}
