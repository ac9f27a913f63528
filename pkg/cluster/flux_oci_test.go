package cluster

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/pkg/health"
)

const ociDigest = "sha256:9f2c4b1e0d8a7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b"

const ociKustomization = `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: web, namespace: flux-system, generation: 1}
spec:
  interval: 1h
  sourceRef: {kind: OCIRepository, name: manifests}
status:
  observedGeneration: 1
  lastAppliedRevision: 1.0.1@` + ociDigest + `
  lastAttemptedRevision: 1.0.1@` + ociDigest + `
  conditions:
  - {type: Ready, status: "True", reason: ReconciliationSucceeded, message: "Applied revision: 1.0.1@` + ociDigest + `"}
`

// refusingOCIRepository is source-controller's status for an artifact
// whose layer is not the media type spec.layerSelector asks for.
const refusingOCIRepository = `apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: manifests, namespace: flux-system, generation: 1}
status:
  conditions:
  - {type: Reconciling, status: "True", reason: ProgressingWithRetry, message: "building artifact: new revision '1.0.1@` + ociDigest + `' for '127.0.0.1:5000/web-manifests:1.0.1'"}
  - {type: Ready, status: "False", reason: OCIArtifactLayerOperationFailed, message: "failed to find layer with media type 'application/vnd.cncf.flux.content.v1.tar+gzip' in artifact"}
`

// The judge of mode flux judges a Kustomization applying an artifact, and
// its OCIRepository beside it, for each spelling of the artifact a put
// may name.
func TestFluxJudgesAnOCISource(t *testing.T) {
	for _, rev := range []string{ociDigest, "1.0.1@" + ociDigest, ociDigest[len("sha256:"):]} {
		t.Run(rev, func(t *testing.T) {
			ks := obj(t, ociKustomization)
			judge := flux{}.judger(ks, rev)
			require.Equal(t, health.Current, judge(ks, time.Now()).State)
			st := judge(obj(t, refusingOCIRepository), time.Now())
			require.Equal(t, health.Failed, st.State)
			require.Equal(t, "refuses revision "+rev+": OCIArtifactLayerOperationFailed: failed to find layer with media type 'application/vnd.cncf.flux.content.v1.tar+gzip' in artifact", st.Message)
		})
	}
}

func TestFluxWatchesTheSourcesItJudges(t *testing.T) {
	for kind := range sourceJudges {
		_, ok := fluxSources[kind]
		require.True(t, ok, kind)
	}
	require.NotNil(t, sourceJudges["OCIRepository"])
	require.Nil(t, sourceJudges["Bucket"], "no judge says when a Bucket refuses a revision")
}

// revision_file reads the digest file an artifact get writes.
func TestAgentParamsReadAnArtifactDigest(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "digest"), []byte(ociDigest+"\n"), 0o644))
	in := input(t, `{}`, `{"revision_file": "digest"}`)
	in.Dir = dir
	p, err := parseAgentParams(in, ModeFlux)
	require.NoError(t, err)
	require.Equal(t, ociDigest, p.Revision)
	require.True(t, health.SameRevision("1.0.1@"+ociDigest, p.Revision), "Flux's revision of it")
}
