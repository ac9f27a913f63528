package health

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// builtVersion finds the chart version in a HelmChart's Ready message
// (source-controller's build summary).
var builtVersion = regexp.MustCompile(`chart with version '([^']+)'`)

// HelmChart judges the HelmChart source-controller builds for a
// HelmRelease from a GitRepository, for the commit rev: ready when it
// observed rev (observedSourceArtifactRevision) for its current
// generation, is Ready and no longer Reconciling, and (reconcileStrategy
// Revision) its artifact is the chart version carrying rev's first 12 hex
// digits, and the version Ready's message says was built.
// source-controller records observedSourceArtifactRevision, then
// Ready=True, then the new artifact, in separate patches (measured), so
// neither alone says the chart of rev is built.
// Failed when it is Stalled or not Ready at rev (the chart at that commit
// does not build: only a new commit changes that).
func HelmChart(rev string) Judge {
	return func(o *unstructured.Unstructured, _ time.Time) Status {
		observed := str(o, "status", "observedSourceArtifactRevision")
		artifact := str(o, "status", "artifact", "revision")
		og, _ := ObservedGeneration(o)
		ready, reason, msg := condition(o, "Ready")
		stalled, sreason, smsg := condition(o, "Stalled")
		reconciling, _, _ := condition(o, "Reconciling")
		state := fmt.Sprintf("Ready=%s, source revision %s, chart %s", strings.TrimSpace(orNone(ready)+" "+reason), orNone(observed), orNone(artifact))
		if reconciling == "True" {
			state += ", reconciling"
		}
		if ready == "False" && msg != "" {
			state += ": " + msg
		}
		ours := SameRevision(observed, rev) && og >= o.GetGeneration()
		built := artifact != ""
		if str(o, "spec", "reconcileStrategy") == "Revision" {
			id := RevisionID(observed)
			built = len(id) >= 12 && strings.Contains(artifact, "+"+id[:12])
		}
		// The conditions are patched before the artifact: Ready says "packaged
		// 'web' chart with version '0.2.0'" while the artifact is still 0.1.0.
		if m := builtVersion.FindStringSubmatch(msg); ready == "True" && m != nil && m[1] != artifact {
			built = false
		}
		switch {
		case !ours:
			return Status{InProgress, state}
		case ready == "True" && reconciling != "True" && built:
			return Status{Current, state}
		case stalled == "True":
			return Status{Failed, fmt.Sprintf("the chart at revision %s: Stalled %s: %s", observed, sreason, smsg)}
		case ready == "False" && !strings.HasPrefix(reason, "Progressing"):
			return Status{Failed, fmt.Sprintf("the chart at revision %s does not build: %s: %s", observed, reason, msg)}
		}
		return Status{InProgress, state}
	}
}
