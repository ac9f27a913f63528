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
func (argocd) request(ctx context.Context, c *kube.Client, obj *unstructured.Unstructured, rev string, p *AgentParams, log func(string, ...any)) error {
	patch := map[string]any{"metadata": map[string]any{"annotations": map[string]any{"argocd.argoproj.io/refresh": "normal"}}}
	what := "refresh"
	if p.Sync {
		if op, ok, _ := unstructured.NestedMap(obj.Object, "operation"); ok && op != nil {
			return fmt.Errorf("Application %s/%s already has an operation in progress: wait for it or terminate it before syncing", obj.GetNamespace(), obj.GetName())
		}
		patch["operation"] = map[string]any{
			"sync":        map[string]any{"revision": rev, "prune": p.Prune},
			"initiatedBy": map[string]any{"username": "gitops-resource"},
		}
		what = "refresh and sync to " + rev
	}
	data, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	name := "Application " + obj.GetNamespace() + "/" + obj.GetName()
	if _, err := c.Dynamic().Resource(applicationGVR).Namespace(obj.GetNamespace()).Patch(ctx, obj.GetName(), types.MergePatchType, data, metav1.PatchOptions{FieldManager: "gitops-resource"}); err != nil {
		return c.Explain("request a "+what+" of", name, "patch", "applications", obj.GetNamespace(), err)
	}
	log("%s: %s requested", name, what)
	return nil
}

// judger: done when the sync revision is rev, Synced, Healthy, and no
// operation runs (or the last one, for rev, succeeded). It never accepts
// the state from before the commit, since the revision must match. A
// failed or errored operation, or Degraded health at rev, fails with Argo's
// messages and the unhealthy resources.
func (argocd) judger(_ *unstructured.Unstructured, rev string) func(*unstructured.Unstructured, time.Time) (bool, string, error) {
	return func(o *unstructured.Unstructured, _ time.Time) (bool, string, error) {
		syncRev := str(o, "status", "sync", "revision")
		sync := str(o, "status", "sync", "status")
		health := str(o, "status", "health", "status")
		phase := str(o, "status", "operationState", "phase")
		opRev := str(o, "status", "operationState", "syncResult", "revision")
		_, pending, _ := unstructured.NestedMap(o.Object, "operation")
		state := fmt.Sprintf("sync %s at %s, health %s, operation %s", orNone(sync), orNone(short(syncRev)), orNone(health), orNone(phase))
		ours := sameRevision(syncRev, rev) || sameRevision(opRev, rev)
		if (phase == "Failed" || phase == "Error") && (opRev == "" || sameRevision(opRev, rev)) && !pending {
			return false, state, fmt.Errorf("%w: sync %s: %s%s", errAgentFailed, phase, str(o, "status", "operationState", "message"), argoProblems(o))
		}
		if ours && health == "Degraded" && phase != "Running" && !pending {
			return false, state, fmt.Errorf("%w: revision %s is Degraded%s", errAgentFailed, rev, argoProblems(o))
		}
		opDone := phase != "Running" && !pending && (phase == "" || phase == "Succeeded" || !sameRevision(opRev, rev))
		return sameRevision(syncRev, rev) && sync == "Synced" && health == "Healthy" && opDone, state, nil
	}
}

// argoProblems lists the Application's conditions and unhealthy resources.
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
	return b.String()
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}
