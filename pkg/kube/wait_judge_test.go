package kube

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"

	"github.com/gitops-resource/gitops-resource/pkg/health"
)

// TestEvaluateWithAJudge drives one object through Wait's evaluation with
// a judge of its own (as the agents' waits pass one): what it says is
// logged with a Secret's data quoted in it masked, an unchanged object is
// judged again only when asked (WaitOptions.Every), and an object deleted
// while waited for fails unless it was ready.
func TestEvaluateWithAJudge(t *testing.T) {
	const value = "b2xkLXBhc3MtMTExMQ=="
	quoting := `dry-run failed: {"apiVersion":"v1","data":{"password":"` + value + `"},"kind":"Secret"}`
	verdict := health.Status{State: health.InProgress, Message: quoting}
	judged := 0
	judge := func(*unstructured.Unstructured, time.Time) health.Status { judged++; return verdict }

	store := cache.NewStore(cache.MetaNamespaceKeyFunc)
	live := obj(t, `{apiVersion: kustomize.toolkit.fluxcd.io/v1, kind: Kustomization, metadata: {name: app, namespace: flux-system, resourceVersion: "7"}}`)
	require.NoError(t, store.Add(live))
	w := &watched{obj: live, key: "flux-system/app", ns: "flux-system", store: store, judge: judge}
	c := &Client{}
	var log bytes.Buffer
	evaluate := func(again bool) { c.evaluate(w, nil, again, WaitOptions{}, &log) }

	evaluate(false)
	require.Equal(t, 1, judged)
	require.Equal(t, health.InProgress, w.status.State)
	require.Equal(t, `dry-run failed: {"apiVersion":"v1","data":{[redacted]},"kind":"Secret"}`, w.status.Message)
	require.NotContains(t, log.String(), value)
	require.Contains(t, log.String(), "Kustomization/flux-system/app: dry-run failed")

	evaluate(false)
	require.Equal(t, 1, judged, "an unchanged object is not judged again")
	evaluate(true)
	require.Equal(t, 2, judged, "judged again when asked: a judge may decide on time")

	require.NoError(t, store.Delete(live))
	evaluate(false)
	require.Equal(t, health.Status{State: health.Failed, Message: "deleted while waiting"}, w.status)

	// Ready, then deleted (a Job's ttlSecondsAfterFinished): still ready.
	verdict = health.Status{State: health.Current, Message: "done"}
	require.NoError(t, store.Add(live))
	evaluate(true)
	require.Equal(t, health.Current, w.status.State)
	require.NoError(t, store.Delete(live))
	evaluate(false)
	require.Equal(t, health.Status{State: health.Current, Message: "done"}, w.status)

	// Never there yet: waited for.
	fresh := &watched{obj: live, key: "flux-system/other", ns: "flux-system", store: store, judge: judge}
	c.evaluate(fresh, nil, false, WaitOptions{}, &log)
	require.Equal(t, health.Status{State: health.InProgress, Message: "does not exist yet"}, fresh.status)
}
