package registry_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/pkg/registry"
)

// serve starts a loopback registry, optionally behind basic auth, and
// pushes a random image as repo:tag. It returns the host and the digest.
func serve(t *testing.T, user, pass string, wrap func(http.Handler) http.Handler, repo, tag string) (string, string) {
	t.Helper()
	var h http.Handler = ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0)))
	if user != "" {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			inner.ServeHTTP(w, r)
		})
	}
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	img, err := random.Image(256, 1)
	require.NoError(t, err)
	ref, err := name.NewTag(host+"/"+repo+":"+tag, name.Insecure)
	require.NoError(t, err)
	auth := authn.Anonymous
	if user != "" {
		auth = authn.FromConfig(authn.AuthConfig{Username: user, Password: pass})
	}
	require.NoError(t, remote.Write(ref, img, remote.WithAuth(auth)))
	d, err := img.Digest()
	require.NoError(t, err)
	return host, d.String()
}

func TestResolve(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	host, digest := serve(t, "", "", nil, "acme/web", "1.1.0")

	got, err := registry.Resolve(ctx, host+"/acme/web", "1.1.0")
	require.NoError(t, err)
	require.Equal(t, digest, got)

	_, err = registry.Resolve(ctx, host+"/acme/web", "9.9.9")
	var nf *registry.NotFoundError
	require.ErrorAs(t, err, &nf)
	require.Contains(t, err.Error(), "9.9.9")
	require.Contains(t, err.Error(), host+"/acme/web")
}

func TestResolveWithBasicAuth(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	host, digest := serve(t, "robot", "s3cret-pass", nil, "acme/api", "2.0")

	got, err := registry.Resolve(ctx, host+"/acme/api", "2.0", registry.WithBasicAuth("robot", "s3cret-pass"))
	require.NoError(t, err)
	require.Equal(t, digest, got)

	_, err = registry.Resolve(ctx, host+"/acme/api", "2.0", registry.WithBasicAuth("robot", "wrong"), registry.WithRetry(1, time.Millisecond))
	require.True(t, registry.AccessDenied(err), "%v", err)
	require.Contains(t, err.Error(), "access denied (401)")
	require.NotContains(t, err.Error(), "wrong")

	cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, host, base64.StdEncoding.EncodeToString([]byte("robot:s3cret-pass")))
	got, err = registry.Resolve(ctx, host+"/acme/api", "2.0", registry.WithDockerConfig(cfg))
	require.NoError(t, err)
	require.Equal(t, digest, got)

	_, err = registry.Resolve(ctx, host+"/acme/api", "2.0", registry.WithDockerConfig(cfg), registry.WithBasicAuth("a", "b"))
	require.Error(t, err)
}

func TestResolveRetries429And5xx(t *testing.T) {
	t.Parallel()
	var fail atomic.Int32
	fail.Store(-1) // not failing while the image is pushed
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/manifests/") && (r.Method == http.MethodHead || r.Method == http.MethodGet) {
				switch n := fail.Add(1); n {
				case 1:
					w.WriteHeader(http.StatusTooManyRequests)
					return
				case 2:
					w.WriteHeader(http.StatusBadGateway)
					return
				}
			}
			h.ServeHTTP(w, r)
		})
	}
	host, digest := serve(t, "", "", wrap, "acme/web", "1.0")
	fail.Store(0)
	var log strings.Builder
	got, err := registry.Resolve(context.Background(), host+"/acme/web", "1.0", registry.WithRetry(4, time.Millisecond), registry.WithLog(&log))
	require.NoError(t, err)
	require.Equal(t, digest, got)
	require.Equal(t, 2, strings.Count(log.String(), "retrying"), log.String())

}

func TestValidateDockerConfig(t *testing.T) {
	auth := base64.StdEncoding.EncodeToString([]byte("robot:pass"))
	tests := []struct {
		name, content string
		ok            bool
	}{
		{"auth", `{"auths": {"ghcr.io": {"auth": "` + auth + `"}}}`, true},
		{"URL key, username and password", `{"auths": {"https://index.docker.io/v1/": {"username": "robot", "password": "pass"}}}`, true},
		{"identity token", `{"auths": {"registry.example": {"identitytoken": "tok"}}}`, true},
		{"other docker settings", `{"auths": {}, "credsStore": "desktop", "psFormat": "table"}`, true},
		{"not JSON", `{not json`, false},
		{"auth not base64", `{"auths": {"ghcr.io": {"auth": "not base64!"}}}`, false},
		{"auth without a password separator", `{"auths": {"ghcr.io": {"auth": "` + base64.StdEncoding.EncodeToString([]byte("robot")) + `"}}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := registry.ValidateDockerConfig(tt.content)
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, `docker_config is not a Docker config.json: expected {"auths": {"host": {"auth": "<base64 of user:password>"}}}`)
		})
	}
}
