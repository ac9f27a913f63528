package semver_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/internal/gittest"
	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
)

// TestSemverResourceSourceWithoutKind: a semver-resource resource definition
// (driver git, no kind) switches by changing only its type: check, get and
// put work on it as written. semver-resource's other drivers, and a source
// that names neither kind nor driver, fail naming what is supported.
func TestSemverResourceSourceWithoutKind(t *testing.T) {
	t.Parallel()
	srv := gittest.New(t)
	srv.CreateRepo(t, "app")
	src := map[string]any{"driver": "git", "uri": srv.HTTPURL("app"), "branch": "version", "file": "version", "initial_version": "1.0.0"}

	var versions []map[string]string
	rt.Run(t, "check", "", map[string]any{"source": src}, nil).OK(t, &versions)
	require.Equal(t, []map[string]string{{"number": "1.0.0"}}, versions)

	var out rt.Response
	rt.Run(t, "out", t.TempDir(), map[string]any{"source": src, "params": map[string]any{"bump": "patch"}}, rt.Env("release", "1")).OK(t, &out)
	require.Equal(t, "1.0.1", out.Version["number"])
	content, ok := srv.ReadFile(t, "app", "version", "version")
	require.True(t, ok)
	require.Equal(t, "1.0.1", content)

	rt.Run(t, "in", t.TempDir(), map[string]any{"source": src, "version": map[string]string{"number": "1.0.1"}}, nil).OK(t, &out)
	require.Equal(t, "1.0.1", out.Version["number"])

	for _, tt := range []struct {
		name string
		src  map[string]any
		want string
	}{
		{"driver s3", map[string]any{"driver": "s3", "bucket": "b", "key": "k"}, `source.driver "s3" of semver-resource is not supported`},
		{"driver gcs", map[string]any{"driver": "gcs", "bucket": "b", "key": "k"}, `source.driver "gcs" of semver-resource is not supported`},
		{"neither kind nor driver", map[string]any{"uri": srv.HTTPURL("app")}, "source.kind is required: one of cluster, manifest, semver"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rt.Run(t, "check", "", map[string]any{"source": tt.src}, nil).Fails(t, tt.want)
		})
	}
}
