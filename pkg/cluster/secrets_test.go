package cluster

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/gitops-resource/gitops-resource/pkg/resource"
)

// echo is what an agent's message looks like when the server's error quoted
// a decrypted Secret, with kubectl's last-applied copy of it, as JSON.
const (
	echoValue = "c29wcy1kZWNyeXB0ZWQtOWYx" // sops-decrypted-9f1
	echo      = `Secret/apps/db dry-run failed: {"apiVersion":"v1","data":{"password":"` + echoValue + `"},` +
		`"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"data\":{\"password\":\"` + echoValue + `\"}}"}}}`
	echoMasked = `Secret/apps/db dry-run failed: {"apiVersion":"v1","data":{[redacted]},` +
		`"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"data\":{[redacted]}}"}}}`
)

func TestAgentMessagesQuotingASecretAreMasked(t *testing.T) {
	quoted, err := json.Marshal(echo) // as it sits in a YAML/JSON status
	require.NoError(t, err)

	// Flux: the failure, the state line and the HelmRelease's state.
	k := obj(t, strings.Replace(ks("main@sha1:1111111111111111111111111111111111111111", "main@sha1:"+sha, "False", "ReconciliationFailed"),
		`"the message"`, string(quoted), 1))
	done, state, err := flux{}.judger(k, "main@sha1:"+sha)(k, time.Now())
	require.False(t, done)
	require.Error(t, err)
	for _, text := range []string{state, err.Error(), helmReleaseState(k)} {
		require.NotContains(t, text, echoValue)
		require.Contains(t, text, echoMasked)
	}

	// Argo CD: the operation's message and the conditions.
	app := obj(t, `
metadata: {name: app, namespace: argocd}
status:
  sync: {status: OutOfSync, revision: `+sha+`}
  operationState:
    phase: Failed
    message: `+string(quoted)+`
    syncResult: {revision: `+sha+`}
  conditions:
  - {type: SyncError, message: `+string(quoted)+`}
`)
	_, _, err = argocd{}.judger(app, sha)(app, time.Now())
	require.Error(t, err)
	require.NotContains(t, err.Error(), echoValue)
	require.Contains(t, err.Error(), "sync Failed: "+echoMasked+"\n  condition SyncError: "+echoMasked)

	// status.json in the get dir.
	dir := t.TempDir()
	_, err = respond(resource.Input{Dir: dir}, sha, []*unstructured.Unstructured{app}, sha)
	require.NoError(t, err)
	data, err := os.ReadFile(filepath.Join(dir, "status.json"))
	require.NoError(t, err)
	require.NotContains(t, string(data), echoValue)
	require.Contains(t, string(data), `"data\":{[redacted]}`)
}
