package cluster

import (
	"context"
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/gitops-resource/gitops-resource/pkg/health"
	"github.com/gitops-resource/gitops-resource/pkg/kube"
)

var applicationGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}

// argocd waits on an Argo CD Application, through the Kubernetes API only.
type argocd struct{}

func (argocd) target(src *Source) (schema.GroupVersionResource, string, string) {
	return applicationGVR, src.Namespace, src.Application
}

func (argocd) kind() string { return "Application" }

func (argocd) live(obj *unstructured.Unstructured) string {
	return str(obj, "status", "sync", "revision")
}

// request asks for a refresh, and with params.sync starts a sync operation
// to the revision in the same patch.
func (argocd) request(ctx context.Context, c *kube.Client, obj *unstructured.Unstructured, rev string, p *AgentParams, log func(string, ...any)) (*unstructured.Unstructured, error) {
	patch := map[string]any{"metadata": map[string]any{"annotations": map[string]any{"argocd.argoproj.io/refresh": "normal"}}}
	what := "refresh"
	if p.Sync {
		if op, ok, _ := unstructured.NestedMap(obj.Object, "operation"); ok && op != nil {
			return nil, fmt.Errorf("Application %s/%s already has an operation in progress: wait for it or terminate it before syncing", obj.GetNamespace(), obj.GetName())
		}
		patch["operation"] = map[string]any{
			"sync":        map[string]any{"revision": rev, "prune": p.Prune},
			"initiatedBy": map[string]any{"username": "gitops-resource"},
		}
		what = "refresh and sync to " + rev
	}
	data, err := json.Marshal(patch)
	if err != nil {
		return nil, err
	}
	name := "Application " + obj.GetNamespace() + "/" + obj.GetName()
	patched, err := c.Dynamic().Resource(applicationGVR).Namespace(obj.GetNamespace()).Patch(ctx, obj.GetName(), types.MergePatchType, data, metav1.PatchOptions{FieldManager: "gitops-resource"})
	if err != nil {
		return nil, c.Explain("request a "+what+" of", name, "patch", "applications", obj.GetNamespace(), err)
	}
	log("%s: %s requested", name, what)
	return patched, nil
}

// judger: health.ArgoCDApplication.
func (argocd) judger(_ *unstructured.Unstructured, rev string) health.Judge {
	return health.ArgoCDApplication(rev)
}

// managed: the Application's status.resources.
func (argocd) managed(obj *unstructured.Unstructured) []*unstructured.Unstructured {
	return argoResources(obj)
}
