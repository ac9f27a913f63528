package health

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// ArgoCDApplication judges an Argo CD Application for the commit rev:
// ready when the sync revision is rev, Synced, Healthy, and no operation
// runs (or the last one, for rev, succeeded). It never accepts the state
// from before the commit, since the revision must match, and fails only on
// the attempt for rev: a failed or errored operation for rev (or one it
// saw start), or Degraded health once Synced at rev (Degraded while
// OutOfSync is the live state of an earlier commit). Failures carry Argo's
// messages and the unhealthy resources.
func ArgoCDApplication(rev string) Judge {
	sawOperation := false
	return func(o *unstructured.Unstructured, _ time.Time) Status {
		syncRev := str(o, "status", "sync", "revision")
		sync := str(o, "status", "sync", "status")
		health := str(o, "status", "health", "status")
		phase := str(o, "status", "operationState", "phase")
		opRev := str(o, "status", "operationState", "syncResult", "revision")
		opTarget := str(o, "status", "operationState", "operation", "sync", "revision")
		_, pending, _ := unstructured.NestedMap(o.Object, "operation")
		running := pending || phase == "Running"
		state := fmt.Sprintf("sync %s at %s, health %s, operation %s", orNone(sync), orNone(short(syncRev)), orNone(health), orNone(phase))
		ourOperation := SameRevision(opRev, rev) || (opRev == "" && (SameRevision(opTarget, rev) || sawOperation))
		if running {
			sawOperation = true
		}
		if (phase == "Failed" || phase == "Error") && ourOperation && !running {
			return Status{Failed, fmt.Sprintf("sync %s: %s%s", phase, str(o, "status", "operationState", "message"), argoProblems(o))}
		}
		if SameRevision(syncRev, rev) && sync == "Synced" && health == "Degraded" && !running {
			return Status{Failed, fmt.Sprintf("revision %s is Degraded%s", rev, argoProblems(o))}
		}
		opDone := !running && (phase == "" || phase == "Succeeded" || !ourOperation)
		if SameRevision(syncRev, rev) && sync == "Synced" && health == "Healthy" && opDone {
			return Status{Current, state}
		}
		return Status{InProgress, state}
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
