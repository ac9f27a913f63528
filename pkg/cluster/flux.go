package cluster

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/gitops-resource/gitops-resource/pkg/kube"
)

var kustomizationGVR = schema.GroupVersionResource{Group: "kustomize.toolkit.fluxcd.io", Version: "v1", Resource: "kustomizations"}

// fluxSources maps a Kustomization's sourceRef kind to its resource.
var fluxSources = map[string]schema.GroupVersionResource{
	"GitRepository": {Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "gitrepositories"},
	"OCIRepository": {Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "ocirepositories"},
	"Bucket":        {Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "buckets"},
}

// flux waits on a Flux Kustomization.
type flux struct{}

func (flux) target(src *Source) (schema.GroupVersionResource, string, string) {
	return kustomizationGVR, src.Namespace, src.Kustomization
}

func (flux) kind() string { return "Kustomization" }

func (flux) live(obj *unstructured.Unstructured) string {
	return str(obj, "status", "lastAppliedRevision")
}

// request stamps reconcile.fluxcd.io/requestedAt on the Kustomization's
// source only: the Kustomization follows the new artifact by itself, and
// stamping it too makes it re-apply the old artifact first.
func (flux) request(ctx context.Context, c *kube.Client, obj *unstructured.Unstructured, _ string, _ *AgentParams, log func(string, ...any)) error {
	if suspended, _, _ := unstructured.NestedBool(obj.Object, "spec", "suspend"); suspended {
		return fmt.Errorf("Kustomization %s/%s is suspended (spec.suspend: true): Flux will not apply anything until it is resumed (flux resume kustomization %s -n %s)",
			obj.GetNamespace(), obj.GetName(), obj.GetName(), obj.GetNamespace())
	}
	kind := str(obj, "spec", "sourceRef", "kind")
	name := str(obj, "spec", "sourceRef", "name")
	ns := str(obj, "spec", "sourceRef", "namespace")
	if ns == "" {
		ns = obj.GetNamespace()
	}
	gvr, ok := fluxSources[kind]
	if !ok {
		return fmt.Errorf("Kustomization %s/%s has a sourceRef of kind %q: only GitRepository, OCIRepository and Bucket are known", obj.GetNamespace(), obj.GetName(), kind)
	}
	stamp := fmt.Sprintf(`{"metadata":{"annotations":{"reconcile.fluxcd.io/requestedAt":%q}}}`, time.Now().Format(time.RFC3339Nano))
	what := fmt.Sprintf("%s %s/%s", kind, ns, name)
	if _, err := c.Dynamic().Resource(gvr).Namespace(ns).Patch(ctx, name, types.MergePatchType, []byte(stamp), metav1.PatchOptions{FieldManager: "gitops-resource"}); err != nil {
		return c.Explain("request a reconcile of", what, "patch", gvr.Resource, ns, err)
	}
	log("%s: reconcile requested", what)
	return nil
}

// judger: done when lastAppliedRevision is rev and Ready=True for the
// current generation. Failure is judged on the attempt for rev only (a
// first Ready=False can be stale status from the previous commit): Stalled,
// a failure that retrying cannot change (the build or dry-run failed), or a
// health check still failing after the Kustomization's retry interval.
func (flux) judger(obj *unstructured.Unstructured, rev string) func(*unstructured.Unstructured, time.Time) (bool, string, error) {
	retry := time.Minute
	for _, field := range []string{"retryInterval", "interval"} {
		if d, err := time.ParseDuration(str(obj, "spec", field)); err == nil && d > 0 {
			retry = d
			break
		}
	}
	retry += 15 * time.Second
	var failingSince time.Time
	return func(o *unstructured.Unstructured, now time.Time) (bool, string, error) {
		applied := str(o, "status", "lastAppliedRevision")
		attempted := str(o, "status", "lastAttemptedRevision")
		observed, _, _ := unstructured.NestedInt64(o.Object, "status", "observedGeneration")
		current := observed >= o.GetGeneration()
		ready, reason, msg := condition(o, "Ready")
		state := fmt.Sprintf("Ready=%s %s, applied %s, attempted %s", orNone(ready), reason, orNone(applied), orNone(attempted))
		if sameRevision(applied, rev) && ready == "True" && current {
			return true, state, nil
		}
		if stalled, sreason, smsg := condition(o, "Stalled"); stalled == "True" {
			return false, state, fmt.Errorf("%w: Stalled %s: %s", errAgentFailed, sreason, smsg)
		}
		if !sameRevision(attempted, rev) || ready != "False" || !current {
			failingSince = time.Time{}
			return false, state, nil
		}
		switch reason {
		case "HealthCheckFailed", "Progressing", "DependencyNotReady", "ProgressingWithRetry":
			if failingSince.IsZero() {
				failingSince = now
			}
			if now.Sub(failingSince) < retry {
				return false, state, nil
			}
		}
		return false, state, fmt.Errorf("%w: revision %s failed: %s: %s", errAgentFailed, attempted, reason, msg)
	}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
