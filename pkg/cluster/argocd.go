package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

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

// judger: done when the sync revision is rev, Synced, Healthy, and no
// operation runs (or the last one, for rev, succeeded). It never accepts
// the state from before the commit, since the revision must match, and
// fails only on the attempt for rev: a failed or errored operation for rev
// (or one it saw start), or Degraded health once Synced at rev (Degraded
// while OutOfSync is the live state of an earlier commit). Failures carry
// Argo's messages and the unhealthy resources.
func (argocd) judger(_ *unstructured.Unstructured, rev string) judge {
	sawOperation := false
	return func(o *unstructured.Unstructured, _ time.Time) (bool, string, error) {
		syncRev := str(o, "status", "sync", "revision")
		sync := str(o, "status", "sync", "status")
		health := str(o, "status", "health", "status")
		phase := str(o, "status", "operationState", "phase")
		opRev := str(o, "status", "operationState", "syncResult", "revision")
		opTarget := str(o, "status", "operationState", "operation", "sync", "revision")
		_, pending, _ := unstructured.NestedMap(o.Object, "operation")
		running := pending || phase == "Running"
		state := fmt.Sprintf("sync %s at %s, health %s, operation %s", orNone(sync), orNone(short(syncRev)), orNone(health), orNone(phase))
		ourOperation := sameRevision(opRev, rev) || (opRev == "" && (sameRevision(opTarget, rev) || sawOperation))
		if running {
			sawOperation = true
		}
		if (phase == "Failed" || phase == "Error") && ourOperation && !running {
			return false, state, fmt.Errorf("%w: sync %s: %s%s", errAgentFailed, phase, kube.MaskSecretData(str(o, "status", "operationState", "message")), argoProblems(o))
		}
		if sameRevision(syncRev, rev) && sync == "Synced" && health == "Degraded" && !running {
			return false, state, fmt.Errorf("%w: revision %s is Degraded%s", errAgentFailed, rev, argoProblems(o))
		}
		opDone := !running && (phase == "" || phase == "Succeeded" || !ourOperation)
		return sameRevision(syncRev, rev) && sync == "Synced" && health == "Healthy" && opDone, state, nil
	}
}

// argoProblems lists the Application's conditions and unhealthy resources,
// a Secret's data quoted in their messages masked.
func argoProblems(o *unstructured.Unstructured) string {
	var b strings.Builder
	conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok {
			fmt.Fprintf(&b, "\n  condition %v: %v", m["type"], m["message"])
		}
	}
	res, _, _ := unstructured.NestedSlice(o.Object, "status", "resources")
	for _, r := range res {
		m, ok := r.(map[string]any)
		if !ok {
			continue
		}
		h, _ := m["health"].(map[string]any)
		if h == nil || h["status"] == "Healthy" || h["status"] == nil {
			continue
		}
		fmt.Fprintf(&b, "\n  %v/%v/%v: %v", m["kind"], m["namespace"], m["name"], h["status"])
		if msg, ok := h["message"].(string); ok && msg != "" {
			fmt.Fprintf(&b, " %s", msg)
		}
	}
	return kube.MaskSecretData(b.String())
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

// managed: the Application's status.resources.
func (argocd) managed(obj *unstructured.Unstructured) []*unstructured.Unstructured {
	return argoResources(obj)
}
