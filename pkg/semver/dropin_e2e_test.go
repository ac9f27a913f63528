package semver_test

import (
	"strings"
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
		{"neither kind nor driver", map[string]any{"uri": srv.HTTPURL("app")}, "source.kind is required: one of artifact, cluster, manifest, semver"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rt.Run(t, "check", "", map[string]any{"source": tt.src}, nil).Fails(t, tt.want)
		})
	}
}

// TestSemverVersionFileRules: the version file is read as semver-resource
// reads it: the first whitespace-separated token of the file is the number,
// a strict semantic version. An empty or unreadable file fails naming the
// file and branch, quoting at most 200 bytes of what it holds.
func TestSemverVersionFileRules(t *testing.T) {
	t.Parallel()
	huge := strings.Repeat("x", 5<<20)
	for _, tt := range []struct {
		name, content, want, fails string
	}{
		{name: "trailing newlines", content: "1.2.3\n\n", want: "1.2.3"},
		{name: "surrounding space", content: "  \t1.2.3-rc.1  \n", want: "1.2.3-rc.1"},
		{name: "a token after the number", content: "1.2.3 junk\n", want: "1.2.3"},
		{name: "empty", content: " \n", fails: "version on branch version of "},
		{name: "build metadata", content: "1.2.3-rc.1+build.5\n", want: "1.2.3-rc.1+build.5"},
		{name: "not a version", content: "v1.2\n", fails: `version on branch version of `},
		{name: "a v prefix", content: "v1.2.3\n", fails: `"v1.2.3\n" is not a semantic version`},
		{name: "two parts", content: "1.2\n", fails: `"1.2\n" is not a semantic version`},
		{name: "a leading zero", content: "01.2.3\n", fails: `"01.2.3\n" is not a semantic version`},
		{name: "5 MB of junk", content: huge, fails: `"` + huge[:200] + `…" is not a semantic version`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := gittest.New(t)
			srv.CreateRepo(t, "app")
			srv.Commit(t, "app", "version", map[string]string{"version": tt.content}, "seed")
			src := map[string]any{"driver": "git", "uri": srv.HTTPURL("app"), "branch": "version", "file": "version"}
			res := rt.Run(t, "check", "", map[string]any{"source": src}, nil)
			if tt.fails != "" {
				res.Fails(t, tt.fails)
				require.Less(t, len(res.Stderr), 2000, "the error quotes at most 200 bytes of the file")
				return
			}
			var versions []map[string]string
			res.OK(t, &versions)
			require.Equal(t, []map[string]string{{"number": tt.want}}, versions)
		})
	}
}
