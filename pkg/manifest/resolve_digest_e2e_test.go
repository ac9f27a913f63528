package manifest_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestResolveDigestWithDockerConfig: docker_config is read as docker reads
// a config.json (a key may be a URL; auth is base64 of user:password, and
// is checked before any request), and its secrets never reach the log.
func TestResolveDigestWithDockerConfig(t *testing.T) {
	t.Parallel()
	repo, digest := registryServer(t, "robot", "registry-s3cret")
	host, _, _ := strings.Cut(repo, "/")
	dep := "spec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: " + repo + ":1.0.0\n"
	fx := newFixture(t, map[string]string{"deploy.yaml": dep})
	auth := base64.StdEncoding.EncodeToString([]byte("robot:registry-s3cret"))
	images := map[string]any{"resolve_digest": true, "images": []map[string]any{{"repository": repo, "tag": "1.1.0"}}}

	cfg := fmt.Sprintf(`{"auths": {"http://%s/v1/": {"auth": %q}, "ghcr.io": {"auth": "b3RoZXI6b3RoZXItczNjcmV0"}}}`, host, auth)
	_, res := fx.put(t, fx.source(map[string]any{"docker_config": cfg}), images)
	res.OK(t, nil)
	res.NoSecrets(t, "registry-s3cret", auth)
	fx.requireFile(t, "deploy.yaml", strings.Replace(dep, "1.0.0", "1.1.0@"+digest, 1))

	tip := fx.srv.Tip(t, "deploy", "main")
	_, res = fx.put(t, fx.source(map[string]any{"docker_config": `{"auths": {"` + host + `": {"auth": "not base64!"}}}`}), images)
	res.Fails(t, "source.docker_config", "not a Docker config.json")
	require.NotContains(t, res.Stderr, "fetch", "a config error is reported before any request")
	require.Equal(t, tip, fx.srv.Tip(t, "deploy", "main"))
}

// TestResolveDigestRetriesABusyRegistry: a 429 and a 503 are retried with
// the one retry policy, each retry logged, and the put lands.
func TestResolveDigestRetriesABusyRegistry(t *testing.T) {
	t.Parallel()
	backend, digest := registryServer(t, "robot", "registry-s3cret")
	backendHost, path, _ := strings.Cut(backend, "/")
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: backendHost})
	busy := []int{http.StatusTooManyRequests, http.StatusServiceUnavailable}
	var manifestReads atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/manifests/") {
			if n := int(manifestReads.Add(1)); n <= len(busy) {
				w.WriteHeader(busy[n-1])
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	repo := strings.TrimPrefix(srv.URL, "http://") + "/" + path

	dep := "spec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: " + repo + ":1.0.0\n"
	fx := newFixture(t, map[string]string{"deploy.yaml": dep})
	src := fx.source(map[string]any{"registry_username": "robot", "registry_password": "registry-s3cret"})
	_, res := fx.put(t, src, map[string]any{"resolve_digest": true, "images": []map[string]any{{"repository": repo, "tag": "1.1.0"}}})
	res.OK(t, nil)
	res.NoSecrets(t, "registry-s3cret")
	fx.requireFile(t, "deploy.yaml", strings.Replace(dep, "1.0.0", "1.1.0@"+digest, 1))
	require.Equal(t, int32(len(busy)+1), manifestReads.Load())
	require.Regexp(t, `resolve `+repo+`:1.1.0 at [^ ]+ failed \(attempt 1 of 5\), retrying in \d+ms: .*429`, res.Stderr)
	require.Regexp(t, `resolve `+repo+`:1.1.0 at [^ ]+ failed \(attempt 2 of 5\), retrying in \d+ms: .*503`, res.Stderr)
}
