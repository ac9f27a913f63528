package semver_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
)

// TestEveryConfigProblemOfARequestAtOnce runs each verb with a request that
// is wrong in several places (source, params, version): the step fails
// naming every problem at once, and the git server sees no request.
func TestEveryConfigProblemOfARequestAtOnce(t *testing.T) {
	t.Parallel()
	srv := newCountingServer(t)
	srv.CreateRepo(t, "app")
	tip := srv.Commit(t, "app", "version", map[string]string{"version": "1.0.0"}, "seed")
	src := func(extra map[string]any) map[string]any {
		s := source(map[string]any{"uri": srv.HTTPURL("app")})
		for k, v := range extra {
			s[k] = v
		}
		return s
	}
	tests := []struct {
		name, verb string
		request    map[string]any
		want       []string
	}{
		{"check: the source and the version", "check",
			map[string]any{"source": src(map[string]any{"initial_version": "one"}), "version": map[string]any{"number": "1.x"}},
			[]string{"source.initial_version", `version.number: "1.x" is not a semantic version`}},
		{"in: params get may not take, and no version", "in",
			map[string]any{"source": src(nil), "params": map[string]any{"get_latest": true, "pre": "rc!"}, "version": map[string]any{}},
			[]string{`params.pre "rc!" must be letters, digits and hyphens`, "version.number is required", "get params may only be bump (major, minor, patch, final), pre and build"}},
		{"out: the source, and params with nothing to do", "out",
			map[string]any{"source": src(map[string]any{"file": ".git/config"}), "params": map[string]any{}},
			[]string{"source.file", "params: nothing to do"}},
		{"out: a bad bump, and ref_file with driver git", "out",
			map[string]any{"source": src(nil), "params": map[string]any{"bump": "huge", "ref_file": "ref"}},
			[]string{`params.bump "huge" is not a bump`, "params.ref_file only applies to driver tags"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rt.Run(t, tt.verb, t.TempDir(), tt.request, rt.Env("j", "1")).Fails(t, tt.want...)
		})
	}
	t.Cleanup(func() {
		require.Zero(t, srv.requests.Load(), "a config error is reported before any request to the git server")
		require.Equal(t, tip, srv.Tip(t, "app", "version"), "the branch is unchanged")
	})
}
