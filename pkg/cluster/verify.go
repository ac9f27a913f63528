package cluster

import (
	"context"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/gitops-resource/gitops-resource/pkg/kube"
	"github.com/gitops-resource/gitops-resource/pkg/resource"
)

// verifyManaged is verify_images for the agent modes: once the agent
// reports the revision applied and healthy, the Deployments, StatefulSets
// and DaemonSets it manages (managed lists them from each object's status)
// must have rolled out, and their new pods must run the digests their pod
// templates pin. It is mode direct's check (kube.WaitOptions.VerifyImages)
// on the agent's workloads.
func verifyManaged(ctx context.Context, in resource.Input, c *kube.Client, objs []*unstructured.Unstructured, managed func(*unstructured.Unstructured) []*unstructured.Unstructured, rev string, timeout time.Duration) error {
	var workloads []*unstructured.Unstructured
	var by []string
	seen := map[string]bool{}
	for _, o := range objs {
		n := 0
		for _, w := range managed(o) {
			if kube.IsWorkload(w) && !seen[kube.Ref(w)] {
				seen[kube.Ref(w)] = true
				workloads = append(workloads, w)
				n++
			}
		}
		if n > 0 {
			by = append(by, kube.Ref(o))
		}
	}
	what := make([]string, len(objs))
	for i, o := range objs {
		what[i] = kube.Ref(o)
	}
	if len(workloads) == 0 {
		in.Logf("verify_images: no Deployment, StatefulSet or DaemonSet among the objects %s applied: no images to verify", strings.Join(what, " and "))
		return nil
	}
	in.Logf("verify_images: checking the pods of %d workloads of %s", len(workloads), strings.Join(by, " and "))
	// Since zero: every pod of the current revision counts, however early
	// the agent created it.
	if _, err := c.Wait(ctx, workloads, kube.WaitOptions{Timeout: timeout, VerifyImages: true}); err != nil {
		return fmt.Errorf("verify_images: %s applied revision %s and reports it healthy, but %w", strings.Join(what, " and "), rev, err)
	}
	return nil
}

// fluxInventory lists the objects in status.inventory.entries of a Flux
// Kustomization or HelmRelease: ids "<namespace>_<name>_<group>_<kind>".
func fluxInventory(obj *unstructured.Unstructured) []*unstructured.Unstructured {
	entries, _, _ := unstructured.NestedSlice(obj.Object, "status", "inventory", "entries")
	var out []*unstructured.Unstructured
	for _, e := range entries {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		id, _ := m["id"].(string)
		v, _ := m["v"].(string)
		parts := strings.Split(id, "_")
		if len(parts) != 4 || v == "" {
			continue
		}
		out = append(out, objectRef(parts[2], v, parts[3], parts[0], parts[1]))
	}
	return out
}

// argoResources lists the objects in an Application's status.resources.
func argoResources(obj *unstructured.Unstructured) []*unstructured.Unstructured {
	res, _, _ := unstructured.NestedSlice(obj.Object, "status", "resources")
	var out []*unstructured.Unstructured
	for _, r := range res {
		m, ok := r.(map[string]any)
		if !ok {
			continue
		}
		s := func(k string) string { v, _ := m[k].(string); return v }
		if s("kind") == "" || s("name") == "" || s("version") == "" {
			continue
		}
		out = append(out, objectRef(s("group"), s("version"), s("kind"), s("namespace"), s("name")))
	}
	return out
}

func objectRef(group, version, kind, namespace, name string) *unstructured.Unstructured {
	o := &unstructured.Unstructured{}
	o.SetGroupVersionKind(schema.GroupVersionKind{Group: group, Version: version, Kind: kind})
	o.SetNamespace(namespace)
	o.SetName(name)
	return o
}
