package cluster_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
)

// TestEveryConfigProblemOfARequestAtOnce runs each verb in each mode with a
// request that is wrong in several places (source, params, version): the
// step fails naming every problem at once, the params judged as the mode
// reads them, and the API server it names sees no request at all.
func TestEveryConfigProblemOfARequestAtOnce(t *testing.T) {
	t.Parallel()
	rt.Binaries(t)
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		http.Error(w, "no request was expected", http.StatusTeapot)
	}))
	t.Cleanup(srv.Close)
	const token = "tok-request-e2e-0123456789abcdef"
	src := func(extra map[string]any) map[string]any {
		s := map[string]any{"kind": "cluster", "server": srv.URL, "token": token}
		for k, v := range extra {
			s[k] = v
		}
		return s
	}
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ref"), []byte("3becd003b8704fbc0c7e3f041ff27c51e53ed5f6\n"), 0o644))

	tests := []struct {
		name, verb string
		request    map[string]any
		want       []string
	}{
		{"check direct: a source problem and no resources", "check",
			map[string]any{"source": src(map[string]any{"context": "prod"})},
			[]string{"source.context selects a context of source.kubeconfig", "source.resources is required for check and get with mode direct"}},
		{"check flux: a typo in the source", "check",
			map[string]any{"source": src(map[string]any{"mode": "flux", "namespce": "x"})},
			[]string{`source: unknown key "namespce" (did you mean "namespace"?)`}},
		{"in direct: params, version and resources", "in",
			map[string]any{"source": src(nil), "params": map[string]any{"timeout": "-1s"}, "version": map[string]any{"revison": "x"}},
			[]string{`params.timeout: "-1s" must be greater than zero`, `version: unknown key "revison" (did you mean "revision"?)`, "source.resources is required for check and get with mode direct"}},
		{"in argocd: the version names no revision", "in",
			map[string]any{"source": src(map[string]any{"mode": "argocd", "application": "web"}), "version": map[string]any{}},
			[]string{"version.revision is required: get runs on a version that check emitted"}},
		{"out direct: a source typo and no path", "out",
			map[string]any{"source": src(map[string]any{"namespce": "x"}), "params": map[string]any{}},
			[]string{`source: unknown key "namespce"`, "params.path is required for put to kind cluster (mode direct)"}},
		{"out direct: a wrong mode and contradicting params", "out",
			map[string]any{"source": src(map[string]any{"mode": "push"}), "params": map[string]any{"path": "x", "dry_run": true, "prune": true}},
			[]string{`source.mode "push" is not a mode: use direct, flux or argocd`, "params.dry_run changes nothing"}},
		{"out flux: agent params", "out",
			map[string]any{"source": src(map[string]any{"mode": "flux", "kustomization": "apps"}), "params": map[string]any{"sync": true}},
			[]string{"params.revision or params.revision_file is required for mode flux", "params.sync and params.prune belong to mode argocd"}},
		{"out flux with a helmrelease alone: revision_file outside the build dir", "out",
			map[string]any{"source": src(map[string]any{"mode": "flux", "helmrelease": "web"}), "params": map[string]any{"revision_file": "../ref"}},
			[]string{"params.revision_file"}},
		{"out argocd: direct's params are not its params", "out",
			map[string]any{"source": src(map[string]any{"mode": "argocd", "application": "web"}), "params": map[string]any{"path": "x", "revision_file": "ref", "prune": true}},
			[]string{`params: unknown key "path"`}},
		{"out argocd: prune without sync", "out",
			map[string]any{"source": src(map[string]any{"mode": "argocd", "application": "web", "insecure_skip_tls_verify": true, "certificate_authority": "pem"}), "params": map[string]any{"revision_file": "ref", "prune": true}},
			[]string{"source.insecure_skip_tls_verify and source.certificate_authority contradict each other", "params.prune applies to the sync params.sync starts: set sync: true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := rt.Run(t, tt.verb, dir, tt.request, nil)
			res.Fails(t, tt.want...)
			res.NoSecrets(t, token)
		})
	}
	t.Cleanup(func() {
		require.Zero(t, requests.Load(), "a config error is reported before any request to the API server")
	})
}
