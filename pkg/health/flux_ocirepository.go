package health

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// FluxOCIRepository judges the OCIRepository a Kustomization applies from,
// watched beside it while waiting for the artifact rev ("<tag>@sha256:…",
// "sha256:…" or the bare digest): like FluxGitRepository it can only fail
// the wait, never hold it. Failed when source-controller refuses rev: the
// artifact it is building is rev (a condition names rev's digest: Flux
// writes "building artifact: new revision '<tag>@sha256:…'" in Reconciling
// and ArtifactOutdated, as none of its error messages name the digest) and
// it failed for a reason the content causes, which no retry changes: a
// layer it cannot select or extract (OCIArtifactLayerOperationFailed: not
// the media type spec.layerSelector wants, not a tar.gz), a signature
// spec.verify rejects (SourceVerified=False), or Stalled. Judged once it
// has handled the last reconcile request (reconcile.fluxcd.io/requestedAt):
// before, the failure may be stale. A pull that fails (the registry
// unreachable, OCIArtifactPullFailed) is retried by Flux and is not a
// refusal; Current otherwise.
func FluxOCIRepository(rev string) Judge {
	id := RevisionID(rev)
	return func(o *unstructured.Unstructured, _ time.Time) Status {
		state, handled := fluxSourceState(o)
		if !handled {
			return Status{Current, state + " (reconcile requested)"}
		}
		if len(id) < 7 || !ociNamesRevision(o, id) {
			return Status{Current, state}
		}
		// Ready's message first: it says why in Flux's words.
		conds := Conditions(o)
		for _, refuses := range []func(Condition) bool{
			func(c Condition) bool { return c.Type == "Ready" && c.Status == "False" && ociRefusals[c.Reason] },
			func(c Condition) bool {
				return c.Type == "SourceVerified" && c.Status == "False" ||
					c.Type == "FetchFailed" && c.Status == "True" && ociRefusals[c.Reason] ||
					c.Type == "Stalled" && c.Status == "True"
			},
		} {
			for _, c := range conds {
				if refuses(c) {
					return Status{Failed, fmt.Sprintf("refuses revision %s: %s: %s", rev, c.Reason, c.Message)}
				}
			}
		}
		return Status{Current, state}
	}
}

// ociRefusals are the reasons source-controller fails an OCI artifact for
// what it holds: the next attempt at the same digest fails the same way.
var ociRefusals = map[string]bool{
	"OCIArtifactLayerOperationFailed": true,
	"VerificationError":               true,
}

// ociNamesRevision reports whether one of the conditions of o names the
// digest id: the revision source-controller is building.
func ociNamesRevision(o *unstructured.Unstructured, id string) bool {
	for _, c := range Conditions(o) {
		if strings.Contains(strings.ToLower(c.Message), id) {
			return true
		}
	}
	return false
}
