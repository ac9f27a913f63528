package manifest_test

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestInvalidBranchFailsBeforeAnyRequest: a push_branch (or branch, or
// timeout) git would refuse fails the put at once, naming the field, before
// a single request reaches the server; the remote keeps its one branch.
func TestInvalidBranchFailsBeforeAnyRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		src    map[string]any
		params map[string]any
		want   string
	}{
		{name: "push_branch with ..", params: map[string]any{"push_branch": "deploy..web"}, want: `params.push_branch "deploy..web" is not a valid branch name`},
		{name: "push_branch .lock", params: map[string]any{"push_branch": "deploy/web.lock"}, want: `params.push_branch "deploy/web.lock"`},
		{name: "push_branch @{-1}", params: map[string]any{"push_branch": "@{-1}"}, want: `params.push_branch "@{-1}"`},
		{name: "push_branch with NUL", params: map[string]any{"push_branch": "deploy\x00web"}, want: `params.push_branch "deploy\x00web"`},
		{name: "push_branch starting with -", params: map[string]any{"push_branch": "-web"}, want: `params.push_branch "-web"`},
		{name: "push_branch with a trailing /", params: map[string]any{"push_branch": "deploy/"}, want: `params.push_branch "deploy/"`},
		{name: "branch with a space", src: map[string]any{"branch": "ma in"}, want: `source.branch "ma in" is not a valid branch name`},
		{name: "timeout too large", src: map[string]any{"timeout": 1e300}, want: `source.timeout: "1e+300" must be at most 24h`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, requests := newCountingFixture(t)
			src := f.source(tt.src)
			params := map[string]any{"images": []map[string]any{{"repository": "acme/web", "tag": "2.0"}}}
			for k, v := range tt.params {
				params[k] = v
			}
			_, res := f.put(t, src, params)
			res.Fails(t, tt.want)
			require.NotContains(t, res.Stderr, "attempt", "a config error is never retried")
			require.Zero(t, requests.Load(), "no request reached the git server")
			require.Equal(t, map[string]string{"main": f.seed}, f.srv.Branches(t, "deploy"), "the remote is unchanged")
		})
	}
}
