package manifest_test

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
	f, requests := newCountingFixture(t)
	tests := []struct {
		name, verb string
		request    map[string]any
		want       []string
	}{
		{"check: the source and the version", "check",
			map[string]any{"source": f.source(map[string]any{"paths": []string{"/etc"}}), "version": map[string]any{"ref": "main"}},
			[]string{`source.paths[0]: "/etc" must be relative to the repository root`, "version.ref must be a full 40-digit commit SHA"}},
		{"in: the params and no version", "in",
			map[string]any{"source": f.source(nil), "params": map[string]any{"archve": true}, "version": map[string]any{}},
			[]string{`params: unknown key "archve" (did you mean "archive"?)`, "version.ref is required: in runs on a version that check emitted"}},
		{"out: the source, and params with nothing to do", "out",
			map[string]any{"source": f.source(map[string]any{"registry_username": "ci"}), "params": map[string]any{}},
			[]string{"source.registry_username and source.registry_password go together", "params: nothing to do"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rt.Run(t, tt.verb, t.TempDir(), tt.request, rt.Env("deploy", "3")).Fails(t, tt.want...)
		})
	}
	t.Cleanup(func() {
		require.Zero(t, requests.Load(), "a config error is reported before any request to the git server")
		require.Equal(t, map[string]string{"main": f.seed}, f.srv.Branches(t, "deploy"), "the remote is unchanged")
	})
}
