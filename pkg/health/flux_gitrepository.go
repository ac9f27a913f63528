package health

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// FluxGitRepository judges the GitRepository a Kustomization applies from,
// watched beside it while waiting for the commit rev: it can only fail
// the wait, never hold it (whether rev is applied is the Kustomization's
// to say; the source may already serve a newer commit). Failed when
// source-controller refuses rev: Ready=False, SourceVerified=False,
// FetchFailed=True or Stalled=True with a message naming rev's SHA (a
// signature that does not verify: InvalidCommitSignature), once it has
// handled the last reconcile request (reconcile.fluxcd.io/requestedAt):
// before, the failure may be stale. A failure naming another commit, or
// none, is not about rev; Current otherwise.
func FluxGitRepository(rev string) Judge {
	id := RevisionID(rev)
	return func(o *unstructured.Unstructured, _ time.Time) Status {
		state, handled := fluxSourceState(o)
		if !handled {
			return Status{Current, state + " (reconcile requested)"}
		}
		for _, c := range Conditions(o) {
			refuses := c.Status == "False" && (c.Type == "Ready" || c.Type == "SourceVerified") ||
				c.Status == "True" && (c.Type == "FetchFailed" || c.Type == "Stalled")
			if refuses && len(id) >= 7 && strings.Contains(strings.ToLower(c.Message), id) {
				return Status{Failed, fmt.Sprintf("refuses revision %s: %s: %s", rev, c.Reason, c.Message)}
			}
		}
		return Status{Current, state}
	}
}

// fluxSourceState is a Flux source's state in a line (its Ready condition
// and the revision of its artifact), and whether it has handled the last
// reconcile request (reconcile.fluxcd.io/requestedAt): until it has, a
// failure it shows may be stale.
func fluxSourceState(o *unstructured.Unstructured) (state string, handled bool) {
	ready, reason, msg := condition(o, "Ready")
	state = fmt.Sprintf("Ready=%s, artifact %s", strings.TrimSpace(orNone(ready)+" "+reason), orNone(str(o, "status", "artifact", "revision")))
	if ready == "False" && msg != "" {
		state += ": " + msg
	}
	requested := o.GetAnnotations()["reconcile.fluxcd.io/requestedAt"]
	return state, requested == "" || requested == str(o, "status", "lastHandledReconcileAt")
}
