package health

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// FluxKustomization judges a Flux Kustomization (obj as read before the
// wait) for the commit rev: ready when lastAppliedRevision is rev and
// Ready=True for the current generation. Failure is judged on the attempt
// for rev only (a first Ready=False can be stale status from the previous
// commit):
//   - Stalled for rev, or a failure that retrying cannot change (the build
//     or dry-run failed): at once;
//   - a failure the agent retries (a health check, fetching the artifact):
//     once a second attempt at rev fails too (Ready went Unknown for the
//     retry and back to False), or it has been failing for the retry
//     interval (+15s);
//   - DependencyNotReady: never; a dependency may be catching up to the
//     same commit, so only the timeout ends it (its message says so);
//   - a Stalled left from an earlier revision: if still there after the
//     retry interval (+15s).
//
// The message is the state in one line, or once failed, why.
func FluxKustomization(obj *unstructured.Unstructured, rev string) Judge {
	retry := time.Minute
	for _, field := range []string{"retryInterval", "interval"} {
		if d, err := time.ParseDuration(str(obj, "spec", field)); err == nil && d > 0 {
			retry = d
			break
		}
	}
	retry += 15 * time.Second
	var (
		stalledSince, failingSince time.Time
		failing                    bool // the last state judged was a failed attempt at rev
		attempts                   int  // failed attempts at rev seen
	)
	return func(o *unstructured.Unstructured, now time.Time) Status {
		applied := str(o, "status", "lastAppliedRevision")
		attempted := str(o, "status", "lastAttemptedRevision")
		observed, _ := ObservedGeneration(o)
		current := observed >= o.GetGeneration()
		ready, reason, msg := condition(o, "Ready")
		stalled, sreason, smsg := condition(o, "Stalled")
		state := fmt.Sprintf("Ready=%s, applied %s, attempted %s", strings.TrimSpace(orNone(ready)+" "+reason), orNone(applied), orNone(attempted))
		if stalled == "True" {
			state += ", Stalled " + sreason
		}
		if ready == "False" && msg != "" {
			state += ": " + msg // what a timeout reports as last seen
		}
		if SameRevision(applied, rev) && ready == "True" && current {
			return Status{Current, state}
		}
		ours := SameRevision(attempted, rev) && current
		if stalled == "True" {
			if ours {
				return Status{Failed, fmt.Sprintf("Stalled %s: %s", sreason, smsg)}
			}
			if stalledSince.IsZero() {
				stalledSince = now
			}
			if now.Sub(stalledSince) >= retry {
				return Status{Failed, fmt.Sprintf("Stalled %s for %s, last attempted revision %s: %s", sreason, retry, orNone(attempted), smsg)}
			}
			return Status{InProgress, state}
		}
		stalledSince = time.Time{}
		if !ours {
			failingSince, failing, attempts = time.Time{}, false, 0
			return Status{InProgress, state}
		}
		if ready != "False" {
			failing = false // an attempt (a retry) is under way
			return Status{InProgress, state}
		}
		if !fluxRetries[reason] {
			return Status{Failed, fmt.Sprintf("revision %s failed: %s: %s", attempted, reason, msg)}
		}
		if reason == "DependencyNotReady" {
			return Status{InProgress, state}
		}
		if !failing {
			failing = true
			attempts++
		}
		if failingSince.IsZero() {
			failingSince = now
		}
		if attempts >= 2 || now.Sub(failingSince) >= retry {
			return Status{Failed, fmt.Sprintf("revision %s still failing after a retry: %s: %s", attempted, reason, msg)}
		}
		return Status{InProgress, state}
	}
}

// fluxRetries are the Ready=False reasons of a Kustomization that the next
// attempt may clear without a new commit.
var fluxRetries = map[string]bool{
	"HealthCheckFailed":    true,
	"Progressing":          true,
	"ProgressingWithRetry": true,
	"DependencyNotReady":   true,
	"ArtifactFailed":       true,
}
