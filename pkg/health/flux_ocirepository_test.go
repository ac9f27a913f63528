package health

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	ociDigest = "sha256:9f2c4b1e0d8a7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b"
	oursOCI   = "1.0.1@" + ociDigest
	oldOCI    = "1.0.0@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	mediaType = "failed to find layer with media type 'application/vnd.cncf.flux.content.v1.tar+gzip' in artifact"
)

var ociRepositoryCases = []agentCase{
	{[]string{"artifact-ours"}, []time.Duration{0}, Current, "Ready=True Succeeded, artifact " + oursOCI},
	// It never holds the wait: the Kustomization says when rev is applied.
	{[]string{"artifact-old"}, []time.Duration{0}, Current, "artifact " + oldOCI},
	{[]string{"ours-wrong-media-type"}, []time.Duration{0}, Failed, "refuses revision %s: OCIArtifactLayerOperationFailed: " + mediaType},
	{[]string{"ours-not-gzip"}, []time.Duration{0}, Failed, "refuses revision %s: OCIArtifactLayerOperationFailed: failed to extract layer contents from artifact"},
	{[]string{"ours-unverified"}, []time.Duration{0}, Failed, "refuses revision %s: VerificationError: failed to verify the signature using provider 'cosign'"},
	{[]string{"ours-wrong-media-type-request-pending"}, []time.Duration{0}, Current, "(reconcile requested)"},
	// A broken artifact that is not ours (a newer tag, an older one).
	{[]string{"other-wrong-media-type"}, []time.Duration{0}, Current, "Ready=False OCIArtifactLayerOperationFailed, artifact " + oldOCI + ": " + mediaType},
	// A pull that fails is retried by Flux: the timeout ends it.
	{[]string{"ours-pull-failed"}, []time.Duration{0}, Current, "Ready=False OCIArtifactPullFailed"},
}

// TestFluxOCIRepository judges each fixture for the revision as a put
// names it: Flux's "<tag>@sha256:…", the artifact get's digest file
// ("sha256:…"), the bare digest.
func TestFluxOCIRepository(t *testing.T) {
	for _, rev := range []string{oursOCI, ociDigest, RevisionID(ociDigest)} {
		for _, tt := range ociRepositoryCases {
			t.Run(tt.name()+"@"+rev, func(t *testing.T) {
				st := judged(t, FluxOCIRepository(rev), "flux_ocirepository", tt.fixtures, tt.at)
				require.Equal(t, tt.state, st.State, st.Message)
				msg := tt.msg
				if tt.state == Failed {
					msg = fmt.Sprintf(msg, rev)
				}
				require.Contains(t, st.Message, msg)
			})
		}
	}
}

// A Kustomization applying from an OCIRepository reports Flux's
// "<tag>@sha256:…"; each spelling of the artifact a put may name is it.
func TestSameRevisionOCI(t *testing.T) {
	for _, want := range []string{oursOCI, ociDigest, RevisionID(ociDigest), "sha256:" + RevisionID(ociDigest)[:12], "SHA256:" + RevisionID(ociDigest)} {
		require.True(t, SameRevision(oursOCI, want), want)
	}
	require.False(t, SameRevision(oursOCI, oldOCI))
	require.False(t, SameRevision(oursOCI, "1.0.1"), "a tag alone is not the artifact")
}
