package health

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// HelmRelease judges a Flux HelmRelease (hr as read before the wait):
// ready when Ready=True for the current generation, the last attempt was
// at that generation (and of chart version target, when known), and the
// last release (history[0]) is deployed from it. Failure is judged on the
// attempt at that generation and chart only: Stalled (helm-controller's
// remediation retries are exhausted: RetriesExceeded), or Ready=False with
// no retry pending (no Reconciling condition) for the retry interval
// (spec.interval, at most a minute, +15s). While helm-controller retries
// (Reconciling ProgressingWithRetry) it waits. The message is
// HelmReleaseState, or once failed, why.
func HelmRelease(hr *unstructured.Unstructured, target string) Judge {
	retry := time.Minute
	if d, err := time.ParseDuration(str(hr, "spec", "interval")); err == nil && d > 0 && d < retry {
		retry = d
	}
	retry += 15 * time.Second
	var failingSince time.Time
	return func(o *unstructured.Unstructured, now time.Time) Status {
		gen := o.GetGeneration()
		observed, _ := ObservedGeneration(o)
		attemptedGen, _, _ := unstructured.NestedInt64(o.Object, "status", "lastAttemptedGeneration")
		attempted := str(o, "status", "lastAttemptedRevision")
		ready, reason, msg := condition(o, "Ready")
		stalled, sreason, smsg := condition(o, "Stalled")
		reconciling, _, _ := condition(o, "Reconciling")
		last := LastRelease(o)
		state := HelmReleaseState(o)
		ours := attemptedGen >= gen && (target == "" || attempted == target)
		released := last != nil && last["status"] == "deployed" && (target == "" || last["chartVersion"] == target)
		if ours && ready == "True" && observed >= gen && released {
			return Status{Current, state}
		}
		if !ours {
			failingSince = time.Time{}
			return Status{InProgress, state}
		}
		if stalled == "True" {
			return Status{Failed, fmt.Sprintf("%s (Stalled %s: %s)", orNone(msg), sreason, smsg)}
		}
		if ready != "False" || reconciling == "True" || reason == "DependencyNotReady" {
			failingSince = time.Time{}
			return Status{InProgress, state}
		}
		if failingSince.IsZero() {
			failingSince = now
		}
		if now.Sub(failingSince) >= retry {
			return Status{Failed, fmt.Sprintf("still failing after %s: %s: %s", retry, reason, msg)}
		}
		return Status{InProgress, state}
	}
}

// LastRelease is status.history[0] of a HelmRelease, the latest Helm
// release, or nil.
func LastRelease(hr *unstructured.Unstructured) map[string]any {
	history, _, _ := unstructured.NestedSlice(hr.Object, "status", "history")
	if len(history) == 0 {
		return nil
	}
	m, _ := history[0].(map[string]any)
	return m
}

// HelmReleaseState is a HelmRelease's status in one line, for the log, the
// timeout's "last seen" and the metadata of get and put.
func HelmReleaseState(hr *unstructured.Unstructured) string {
	ready, reason, msg := condition(hr, "Ready")
	observed, _ := ObservedGeneration(hr)
	state := fmt.Sprintf("Ready=%s, generation %d (observed %d), attempted chart %s",
		strings.TrimSpace(orNone(ready)+" "+reason), hr.GetGeneration(), observed, orNone(str(hr, "status", "lastAttemptedRevision")))
	if last := LastRelease(hr); last != nil {
		state += fmt.Sprintf(", release %v.v%v %v (chart %v@%v)", last["name"], last["version"], last["status"], last["chartName"], last["chartVersion"])
	}
	if stalled, sreason, _ := condition(hr, "Stalled"); stalled == "True" {
		state += ", Stalled " + sreason
	}
	if ready == "False" && msg != "" {
		state += ": " + msg
	}
	return state
}
