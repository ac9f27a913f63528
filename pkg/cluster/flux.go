package cluster

import (
	"context"
	"fmt"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/gitops-resource/gitops-resource/pkg/health"
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
func (flux) request(ctx context.Context, c *kube.Client, obj *unstructured.Unstructured, _ string, _ *AgentParams, log func(string, ...any)) (*unstructured.Unstructured, error) {
	if err := fluxNotSuspended(obj, "apply"); err != nil {
		return nil, err
	}
	kind, ns, name := fluxSourceRef(obj, "spec", "sourceRef")
	gvr, ok := fluxSources[kind]
	if !ok {
		return nil, fmt.Errorf("Kustomization %s/%s has a sourceRef of kind %q: only GitRepository, OCIRepository and Bucket are known", obj.GetNamespace(), obj.GetName(), kind)
	}
	return nil, requestSourceReconcile(ctx, c, gvr, kind, ns, name, log)
}

// judger: health.FluxKustomization, and for the source watched beside it
// health.FluxGitRepository or health.FluxOCIRepository.
func (flux) judger(obj *unstructured.Unstructured, rev string) health.Judge {
	ks := health.FluxKustomization(obj, rev)
	sources := map[string]health.Judge{}
	for kind, judge := range sourceJudges {
		sources[kind] = judge(rev)
	}
	return func(o *unstructured.Unstructured, now time.Time) health.Status {
		if source, ok := sources[o.GetKind()]; ok {
			return source(o, now)
		}
		return ks(o, now)
	}
}

// sourceJudges are the kinds of source beside watches, and their judges:
// those that can tell that source-controller refuses the revision.
var sourceJudges = map[string]func(rev string) health.Judge{
	"GitRepository": health.FluxGitRepository,
	"OCIRepository": health.FluxOCIRepository,
}

// beside: the Kustomization's GitRepository or OCIRepository, so that the
// wait fails when source-controller refuses the revision (a commit whose
// signature spec.verify rejects, an artifact it cannot unpack) instead of
// timing out on a Kustomization still Ready on the last one. Without list
// and watch on the source's resource (the Role documented before) it warns
// and waits on the Kustomization alone.
func (flux) beside(ctx context.Context, c *kube.Client, obj *unstructured.Unstructured, log func(string, ...any)) []*unstructured.Unstructured {
	kind, ns, name := fluxSourceRef(obj, "spec", "sourceRef")
	if sourceJudges[kind] == nil {
		return nil
	}
	gvr := fluxSources[kind]
	for _, verb := range []string{"list", "watch"} {
		review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: ns, Verb: verb, Group: gvr.Group, Resource: gvr.Resource, Name: name}}}
		got, err := c.Typed().AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err != nil || !got.Status.Allowed {
			log("warning: may not %s %s in namespace %s: waiting on the Kustomization only, without failing fast when Flux refuses the revision (docs/cluster-rbac.md)", verb, gvr.Resource, ns)
			return nil
		}
	}
	src := &unstructured.Unstructured{}
	src.SetGroupVersionKind(gvr.GroupVersion().WithKind(kind))
	src.SetNamespace(ns)
	src.SetName(name)
	return []*unstructured.Unstructured{src}
}

// managed: the Kustomization's (or HelmRelease's) status.inventory.
func (flux) managed(obj *unstructured.Unstructured) []*unstructured.Unstructured {
	return fluxInventory(obj)
}

// fluxSourceRef is the kind, namespace and name of the Flux source a
// sourceRef at path names; its namespace defaults to the object's.
func fluxSourceRef(obj *unstructured.Unstructured, path ...string) (kind, ns, name string) {
	field := func(f string) string { return str(obj, append(path, f)...) }
	ns = field("namespace")
	if ns == "" {
		ns = obj.GetNamespace()
	}
	return field("kind"), ns, field("name")
}

// fluxNotSuspended fails for a suspended Kustomization or HelmRelease: Flux
// will not <does> anything with it until it is resumed.
func fluxNotSuspended(obj *unstructured.Unstructured, does string) error {
	if suspended, _, _ := unstructured.NestedBool(obj.Object, "spec", "suspend"); suspended {
		kind, ns, name := obj.GetKind(), obj.GetNamespace(), obj.GetName()
		return fmt.Errorf("%s %s/%s is suspended (spec.suspend: true): Flux will not %s anything until it is resumed (flux resume %s %s -n %s)",
			kind, ns, name, does, strings.ToLower(kind), name, ns)
	}
	return nil
}
