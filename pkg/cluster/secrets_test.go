package cluster

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

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

	// Flux: a HelmRelease's state, in the log and the metadata. (What the
	// judges say while waiting is masked by kube.Wait: pkg/kube's
	// TestEvaluateWithAJudge.)
	hr := obj(t, `
metadata: {name: web, namespace: apps, generation: 2}
status:
  observedGeneration: 2
  conditions:
  - {type: Ready, status: "False", reason: UpgradeFailed, message: `+string(quoted)+`}
`)
	require.NotContains(t, helmReleaseState(hr), echoValue)
	require.Contains(t, helmReleaseState(hr), echoMasked)

	// Argo CD: the operation's message and the conditions, in status.json.
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
	// status.json in the get dir.
	dir := t.TempDir()
	_, err = respond(resource.Input{Dir: dir}, sha, []*unstructured.Unstructured{app}, sha)
	require.NoError(t, err)
	data, err := os.ReadFile(filepath.Join(dir, "status.json"))
	require.NoError(t, err)
	require.NotContains(t, string(data), echoValue)
	require.Contains(t, string(data), `"data\":{[redacted]}`)
}
