package cluster

import (
	"context"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

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

// judger: done when lastAppliedRevision is rev and Ready=True for the
// current generation. Failure is judged on the attempt for rev only (a
// first Ready=False can be stale status from the previous commit):
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
func (flux) judger(obj *unstructured.Unstructured, rev string) judge {
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
	return func(o *unstructured.Unstructured, now time.Time) (bool, string, error) {
		applied := str(o, "status", "lastAppliedRevision")
		attempted := str(o, "status", "lastAttemptedRevision")
		observed, _, _ := unstructured.NestedInt64(o.Object, "status", "observedGeneration")
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
		if sameRevision(applied, rev) && ready == "True" && current {
			return true, state, nil
		}
		ours := sameRevision(attempted, rev) && current
		if stalled == "True" {
			if ours {
				return false, state, fmt.Errorf("%w: Stalled %s: %s", errAgentFailed, sreason, smsg)
			}
			if stalledSince.IsZero() {
				stalledSince = now
			}
			if now.Sub(stalledSince) >= retry {
				return false, state, fmt.Errorf("%w: Stalled %s for %s, last attempted revision %s: %s", errAgentFailed, sreason, retry, orNone(attempted), smsg)
			}
			return false, state, nil
		}
		stalledSince = time.Time{}
		if !ours {
			failingSince, failing, attempts = time.Time{}, false, 0
			return false, state, nil
		}
		if ready != "False" {
			failing = false // an attempt (a retry) is under way
			return false, state, nil
		}
		if !fluxRetries[reason] {
			return false, state, fmt.Errorf("%w: revision %s failed: %s: %s", errAgentFailed, attempted, reason, msg)
		}
		if reason == "DependencyNotReady" {
			return false, state, nil
		}
		if !failing {
			failing = true
			attempts++
		}
		if failingSince.IsZero() {
			failingSince = now
		}
		if attempts >= 2 || now.Sub(failingSince) >= retry {
			return false, state, fmt.Errorf("%w: revision %s still failing after a retry: %s: %s", errAgentFailed, attempted, reason, msg)
		}
		return false, state, nil
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

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
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
