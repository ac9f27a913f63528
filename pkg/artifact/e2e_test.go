package artifact_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/require"

	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
	"github.com/gitops-resource/gitops-resource/pkg/artifact"
)

func TestMain(m *testing.M) { rt.Main(m) }

// reg is an in-process registry, optionally behind basic auth, that counts
// the requests it gets.
type reg struct {
	host       string
	user, pass string
	requests   atomic.Int32
}

func newRegistry(t *testing.T, user, pass string) *reg {
	t.Helper()
	r := &reg{user: user, pass: pass}
	inner := ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		if user != "" {
			if u, p, ok := req.BasicAuth(); !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		inner.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

func (r *reg) repo(name string) string { return r.host + "/" + name }

func (r *reg) source(repo string, extra map[string]any) map[string]any {
	s := map[string]any{"kind": "artifact", "repository": repo}
	if r.user != "" {
		s["username"], s["password"] = r.user, r.pass
	}
	for k, v := range extra {
		s[k] = v
	}
	return s
}

func (r *reg) ropts() []remote.Option {
	return []remote.Option{remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: r.user, Password: r.pass}))}
}

// image reads repo:tag (or @digest) straight from the registry.
func (r *reg) image(t *testing.T, ref string) v1.Image {
	t.Helper()
	parsed, err := name.ParseReference(ref, name.Insecure)
	require.NoError(t, err)
	img, err := remote.Image(parsed, r.ropts()...)
	require.NoError(t, err)
	return img
}

// writeTree writes files under a new dir of dir and returns its name.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
}

// readTree reads every regular file under dir, by slash path.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || !info.Mode().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(data)
		return err
	}))
	return out
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(data)
}

var manifests = map[string]string{
	"deploy/web.yaml":     "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n",
	"deploy/svc.yaml":     "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n",
	"config/app.json":     `{"replicas": 3}`,
	"README.md":           "# manifests\n",
	"deep/a/b/c/d/x.yaml": "kind: ConfigMap\n",
}

const revision = "main@sha1:0123456789abcdef0123456789abcdef01234567"

func putParams(extra map[string]any) map[string]any {
	p := map[string]any{"path": "rendered", "source": "https://git.example.com/acme/config.git", "revision": revision}
	for k, v := range extra {
		p[k] = v
	}
	return p
}

// TestPutCheckGet: out pushes the dir in Flux's format (checked with
// go-containerregistry straight from the registry), check reports it, and in
// extracts exactly the files with the tag, digest, revision and url files.
func TestPutCheckGet(t *testing.T) {
	t.Parallel()
	r := newRegistry(t, "", "")
	repo := r.repo("acme/web-manifests")
	put := t.TempDir()
	writeTree(t, filepath.Join(put, "rendered"), manifests)
	require.NoError(t, os.Chmod(filepath.Join(put, "rendered", "README.md"), 0o755))

	var resp rt.Response
	res := rt.Run(t, "out", put, map[string]any{"source": r.source(repo, nil), "params": putParams(map[string]any{"tag": "1.0.0"})}, rt.Env("render", "7"))
	res.OK(t, &resp)
	require.Equal(t, "1.0.0", resp.Version["tag"])
	digest := resp.Version["digest"]
	require.Regexp(t, `^sha256:[0-9a-f]{64}$`, digest)
	require.Equal(t, "oci://"+repo+":1.0.0@"+digest, resp.Meta1("url"))
	require.Equal(t, revision, resp.Meta1("revision"))
	require.Equal(t, "app/render #7", resp.Meta1("build"))
	require.Contains(t, res.Stderr, "pushed oci://"+repo+":1.0.0@"+digest)

	// Flux's format: the manifest, config and layer media types, the
	// annotations, and a tar of names, types, modes and sizes only.
	img := r.image(t, repo+"@"+digest)
	m, err := img.Manifest()
	require.NoError(t, err)
	require.Equal(t, types.OCIManifestSchema1, m.MediaType)
	require.Equal(t, artifact.ConfigMediaType, m.Config.MediaType)
	require.Len(t, m.Layers, 1)
	require.Equal(t, artifact.ContentMediaType, m.Layers[0].MediaType)
	require.Equal(t, map[string]string{
		"org.opencontainers.image.source":   "https://git.example.com/acme/config.git",
		"org.opencontainers.image.revision": revision,
		"org.opencontainers.image.created":  "1970-01-01T00:00:00Z",
	}, m.Annotations)
	layer, err := img.LayerByDigest(m.Layers[0].Digest)
	require.NoError(t, err)
	rc, err := layer.Uncompressed()
	require.NoError(t, err)
	tr := tar.NewReader(rc)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		names = append(names, h.Name)
		require.True(t, h.ModTime.IsZero() || h.ModTime.Unix() == 0, h.Name)
		require.Zero(t, h.Uid)
		require.Empty(t, h.Uname)
		switch h.Name {
		case "README.md":
			require.Equal(t, int64(0o755), h.Mode)
		case ".", "deploy":
			require.Equal(t, byte(tar.TypeDir), h.Typeflag)
			require.Equal(t, int64(0o755), h.Mode)
		}
	}
	require.NoError(t, rc.Close())
	require.True(t, sort.StringsAreSorted(names), "entries in lexical order: %v", names)
	require.Equal(t, ".", names[0])
	require.Contains(t, names, "deep/a/b/c/d/x.yaml")

	var versions []map[string]string
	rt.Run(t, "check", "", map[string]any{"source": r.source(repo, map[string]any{"tag": "1.0.0"})}, nil).OK(t, &versions)
	require.Equal(t, []map[string]string{{"tag": "1.0.0", "digest": digest}}, versions)

	get := t.TempDir()
	res = rt.Run(t, "in", get, map[string]any{"source": r.source(repo, map[string]any{"tag": "1.0.0"}), "version": versions[0]}, nil)
	res.OK(t, &resp)
	require.Equal(t, versions[0], resp.Version)
	require.Equal(t, manifests, readTree(t, filepath.Join(get, "content")))
	info, err := os.Stat(filepath.Join(get, "content", "README.md"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o755), info.Mode().Perm())
	require.Equal(t, "1.0.0\n", readFile(t, filepath.Join(get, "tag")))
	require.Equal(t, digest+"\n", readFile(t, filepath.Join(get, "digest")))
	require.Equal(t, revision+"\n", readFile(t, filepath.Join(get, "revision")))
	require.Equal(t, "oci://"+repo+":1.0.0@"+digest+"\n", readFile(t, filepath.Join(get, "url")))

	skip := t.TempDir()
	rt.Run(t, "in", skip, map[string]any{"source": r.source(repo, nil), "version": versions[0], "params": map[string]any{"skip_download": true}}, nil).OK(t, nil)
	entries, err := os.ReadDir(skip)
	require.NoError(t, err)
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	require.Equal(t, []string{"digest", "revision", "tag", "url"}, got)

	// A tag that does not exist yet is no version, and no error.
	rt.Run(t, "check", "", map[string]any{"source": r.source(repo, map[string]any{"tag": "2.0.0"})}, nil).OK(t, &versions)
	require.Empty(t, versions)
}

// TestPutIsReproducible: the same files, written in another order with
// other mtimes in another dir, give the same digest, so check reports one
// version; another file gives another.
func TestPutIsReproducible(t *testing.T) {
	t.Parallel()
	r := newRegistry(t, "", "")
	repo := r.repo("acme/web-manifests")
	src := r.source(repo, nil)

	names := make([]string, 0, len(manifests))
	for n := range manifests {
		names = append(names, n)
	}
	var digests []string
	for i := range 2 {
		put := t.TempDir()
		rand.Shuffle(len(names), func(a, b int) { names[a], names[b] = names[b], names[a] })
		for j, n := range names {
			p := filepath.Join(put, "rendered", filepath.FromSlash(n))
			require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
			require.NoError(t, os.WriteFile(p, []byte(manifests[n]), 0o644))
			when := time.Date(2001+i*10+j, 1, 2, 3, 4, 5, 0, time.UTC)
			require.NoError(t, os.Chtimes(p, when, when))
		}
		var resp rt.Response
		rt.Run(t, "out", put, map[string]any{"source": src, "params": putParams(nil)}, nil).OK(t, &resp)
		require.Equal(t, "latest", resp.Version["tag"])
		digests = append(digests, resp.Version["digest"])

		var versions []map[string]string
		rt.Run(t, "check", "", map[string]any{"source": src}, nil).OK(t, &versions)
		require.Equal(t, []map[string]string{{"tag": "latest", "digest": digests[0]}}, versions)
	}
	require.Equal(t, digests[0], digests[1])

	put := t.TempDir()
	writeTree(t, filepath.Join(put, "rendered"), manifests)
	writeTree(t, filepath.Join(put, "rendered"), map[string]string{"deploy/web.yaml": "changed\n"})
	var resp rt.Response
	rt.Run(t, "out", put, map[string]any{"source": src, "params": putParams(nil)}, nil).OK(t, &resp)
	require.NotEqual(t, digests[0], resp.Version["digest"])
}

// TestCheckSemverPicksNewestInRange: among versions, prereleases and tags
// that are no version, check reports the highest in the range.
func TestCheckSemverPicksNewestInRange(t *testing.T) {
	t.Parallel()
	r := newRegistry(t, "", "")
	repo := r.repo("acme/web-manifests")
	digests := map[string]string{}
	for _, tag := range []string{"0.9.0", "1.0.0", "1.2.0", "1.10.0", "1.11.0-rc.1", "2.0.0", "latest", "main-abc123", "1.9.9.9"} {
		img, err := random.Image(64, 1)
		require.NoError(t, err)
		ref, err := name.NewTag(repo+":"+tag, name.Insecure)
		require.NoError(t, err)
		require.NoError(t, remote.Write(ref, img, r.ropts()...))
		d, err := img.Digest()
		require.NoError(t, err)
		digests[tag] = d.String()
	}
	for rng, want := range map[string]string{">=1.0.0 <2.0.0": "1.10.0", "~1.2": "1.2.0", ">=2.0.0": "2.0.0", ">=1.11.0-rc.0 <2.0.0": "1.11.0-rc.1"} {
		var versions []map[string]string
		res := rt.Run(t, "check", "", map[string]any{"source": r.source(repo, map[string]any{"semver": rng})}, nil)
		res.OK(t, &versions)
		require.Equal(t, []map[string]string{{"tag": want, "digest": digests[want]}}, versions, rng)
	}
	var versions []map[string]string
	rt.Run(t, "check", "", map[string]any{"source": r.source(repo, map[string]any{"semver": ">=3"})}, nil).OK(t, &versions)
	require.Empty(t, versions)
	// A repository nobody pushed to has no tags: no version, no error.
	rt.Run(t, "check", "", map[string]any{"source": r.source(r.repo("acme/none"), map[string]any{"semver": ">=1"})}, nil).OK(t, &versions)
	require.Empty(t, versions)
}

// TestPutTagFileAndAdditionalTags: the tag comes from a file, the
// additional tags from another; every tag points at the one digest.
func TestPutTagFileAndAdditionalTags(t *testing.T) {
	t.Parallel()
	r := newRegistry(t, "", "")
	repo := r.repo("acme/web-manifests")
	put := t.TempDir()
	writeTree(t, filepath.Join(put, "rendered"), manifests)
	writeTree(t, put, map[string]string{"version/number": "1.4.0\n", "tags/list": "latest stable\n1.4\n"})
	var resp rt.Response
	src := r.source(repo, map[string]any{"semver": ">=1"})
	rt.Run(t, "out", put, map[string]any{"source": src, "params": putParams(map[string]any{"tag_file": "version/number", "additional_tags": "tags/list"})}, nil).OK(t, &resp)
	require.Equal(t, "1.4.0", resp.Version["tag"])
	require.Equal(t, "1.4.0 latest stable 1.4", resp.Meta1("tags"))
	for _, tag := range []string{"1.4.0", "latest", "stable", "1.4"} {
		d, err := r.image(t, repo+":"+tag).Digest()
		require.NoError(t, err)
		require.Equal(t, resp.Version["digest"], d.String(), tag)
	}
	var versions []map[string]string
	rt.Run(t, "check", "", map[string]any{"source": src}, nil).OK(t, &versions)
	require.Equal(t, []map[string]string{resp.Version}, versions)

	writeTree(t, put, map[string]string{"tags/bad": "ok no:colon\n"})
	rt.Run(t, "out", put, map[string]any{"source": src, "params": putParams(map[string]any{"tag": "1.5.0", "additional_tags": "tags/bad"})}, nil).
		Fails(t, "params.additional_tags tags/bad", `"no:colon"`)
	rt.Run(t, "out", put, map[string]any{"source": src, "params": putParams(nil)}, nil).Fails(t, "params.tag or params.tag_file is required")
}

// TestPutAnnotationsFromGitDir: with no source or revision given, they come
// from the git get dir above the path, as Flux writes them (the branch of a
// detached checkout, no credentials in the URL), and .created is the
// commit's time, so a re-put of the same commit is the same digest.
func TestPutAnnotationsFromGitDir(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("needs git: apt-get install git")
	}
	r := newRegistry(t, "", "")
	repo := r.repo("acme/web-manifests")
	put := t.TempDir()
	config := filepath.Join(put, "config")
	writeTree(t, filepath.Join(config, "deploy"), manifests)
	gitRun := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = config
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL=a@example.com", "GIT_COMMITTER_NAME=a",
			"GIT_COMMITTER_EMAIL=a@example.com", "GIT_COMMITTER_DATE=2024-05-01T12:00:00Z", "GIT_AUTHOR_DATE=2024-05-01T12:00:00Z",
			"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
		return strings.TrimSpace(string(out))
	}
	gitRun("init", "-q", "-b", "release")
	gitRun("remote", "add", "origin", "https://robot:gh-t0ken-secret@git.example.com/acme/config.git")
	gitRun("add", ".")
	gitRun("commit", "-q", "-m", "seed")
	sha := gitRun("rev-parse", "HEAD")
	gitRun("checkout", "-q", "--detach", sha)

	var resp rt.Response
	res := rt.Run(t, "out", put, map[string]any{"source": r.source(repo, nil), "params": map[string]any{"path": "config/deploy"}}, nil)
	res.OK(t, &resp)
	res.NoSecrets(t, "gh-t0ken-secret")
	m, err := r.image(t, repo+"@"+resp.Version["digest"]).Manifest()
	require.NoError(t, err)
	require.Equal(t, map[string]string{
		"org.opencontainers.image.source":   "https://git.example.com/acme/config.git",
		"org.opencontainers.image.revision": "release@sha1:" + sha,
		"org.opencontainers.image.created":  "2024-05-01T12:00:00Z",
	}, m.Annotations)

	// The git dir itself is never packed, even when path is the get dir.
	var again rt.Response
	rt.Run(t, "out", put, map[string]any{"source": r.source(repo, nil), "params": map[string]any{"path": "config", "tag": "whole"}}, nil).OK(t, &again)
	get := t.TempDir()
	rt.Run(t, "in", get, map[string]any{"source": r.source(repo, nil), "version": again.Version}, nil).OK(t, nil)
	for name := range readTree(t, filepath.Join(get, "content")) {
		require.False(t, strings.HasPrefix(name, ".git"), name)
	}
	require.Equal(t, "release@sha1:"+sha+"\n", readFile(t, filepath.Join(get, "revision")))
}

// TestPutKustomize: a dir holding a kustomization is packed as its build
// (auto), or as its files with kustomize: false.
func TestPutKustomize(t *testing.T) {
	t.Parallel()
	r := newRegistry(t, "", "")
	repo := r.repo("acme/web-manifests")
	put := t.TempDir()
	writeTree(t, filepath.Join(put, "rendered"), map[string]string{
		"kustomization.yaml": "namespace: prod\nresources:\n- cm.yaml\n",
		"cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  a: b\n",
	})
	var resp rt.Response
	rt.Run(t, "out", put, map[string]any{"source": r.source(repo, nil), "params": putParams(nil)}, nil).OK(t, &resp)
	get := t.TempDir()
	rt.Run(t, "in", get, map[string]any{"source": r.source(repo, nil), "version": resp.Version}, nil).OK(t, nil)
	got := readTree(t, filepath.Join(get, "content"))
	require.Equal(t, []string{"manifests.yaml"}, keys(got))
	require.Contains(t, got["manifests.yaml"], "namespace: prod")

	rt.Run(t, "out", put, map[string]any{"source": r.source(repo, nil), "params": putParams(map[string]any{"kustomize": false, "tag": "files"})}, nil).OK(t, &resp)
	get = t.TempDir()
	rt.Run(t, "in", get, map[string]any{"source": r.source(repo, nil), "version": resp.Version}, nil).OK(t, nil)
	require.Equal(t, []string{"cm.yaml", "kustomization.yaml"}, keys(readTree(t, filepath.Join(get, "content"))))

	writeTree(t, filepath.Join(put, "broken"), map[string]string{"kustomization.yaml": "resources:\n- ../../../etc/passwd\n"})
	rt.Run(t, "out", put, map[string]any{"source": r.source(repo, nil), "params": putParams(map[string]any{"path": "broken"})}, nil).Fails(t, "params.path broken", "kustomize build")
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestCredentialsNeverInOutput: every verb against a registry behind basic
// auth, with the right credentials, the wrong ones and a docker config:
// the failures name the fields to check, and no secret is ever printed.
func TestCredentialsNeverInOutput(t *testing.T) {
	t.Parallel()
	r := newRegistry(t, "robot", "registry-s3cret-pass")
	repo := r.repo("acme/web-manifests")
	put := t.TempDir()
	writeTree(t, filepath.Join(put, "rendered"), manifests)
	auth := base64.StdEncoding.EncodeToString([]byte("robot:registry-s3cret-pass"))
	secrets := []string{"registry-s3cret-pass", auth}

	var resp rt.Response
	res := rt.Run(t, "out", put, map[string]any{"source": r.source(repo, nil), "params": putParams(nil)}, nil)
	res.OK(t, &resp)
	res.NoSecrets(t, secrets...)

	docker := map[string]any{"kind": "artifact", "repository": repo, "docker_config": fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, r.host, auth)}
	res = rt.Run(t, "check", "", map[string]any{"source": docker}, nil)
	res.OK(t, nil)
	res.NoSecrets(t, secrets...)
	res = rt.Run(t, "in", t.TempDir(), map[string]any{"source": docker, "version": resp.Version}, nil)
	res.OK(t, nil)
	res.NoSecrets(t, secrets...)

	wrong := r.source(repo, map[string]any{"password": "wrong-s3cret-pass"})
	for verb, params := range map[string]map[string]any{"check": nil, "in": nil, "out": putParams(nil)} {
		res := rt.Run(t, verb, put, map[string]any{"source": wrong, "version": resp.Version, "params": params}, nil)
		res.Fails(t, "access denied (401)", "check source.username and source.password")
		res.NoSecrets(t, append(secrets, "wrong-s3cret-pass")...)
	}
	anon := map[string]any{"kind": "artifact", "repository": repo}
	rt.Run(t, "check", "", map[string]any{"source": anon}, nil).Fails(t, "access denied (401)", "set source.username and source.password, or source.docker_config")
}

// TestConfigErrorsBeforeAnyRequest: unknown keys (with the closest valid
// one), contradictions and missing fields are all reported at once, and no
// request reaches the registry.
func TestConfigErrorsBeforeAnyRequest(t *testing.T) {
	t.Parallel()
	r := newRegistry(t, "", "")
	repo := r.repo("acme/web-manifests")
	put := t.TempDir()
	writeTree(t, filepath.Join(put, "rendered"), manifests)
	tests := []struct {
		name, verb string
		source     map[string]any
		version    map[string]any
		params     map[string]any
		want       []string
	}{
		{"unknown source key", "check", map[string]any{"kind": "artifact", "repository": repo, "tga": "1"}, nil, nil,
			[]string{`source: unknown key "tga" (did you mean "tag"?)`}},
		{"no repository, tag and semver", "check", map[string]any{"kind": "artifact", "tag": "1", "semver": ">=1", "username": "u"}, nil, nil,
			[]string{"source.repository is required", "source.tag and source.semver cannot both be set", "source.username and source.password go together"}},
		{"scheme and bad range", "check", map[string]any{"kind": "artifact", "repository": "oci://" + repo, "semver": "not a range"}, nil, nil,
			[]string{"no oci://", `source.semver "not a range" is not a semver range`}},
		{"repository with tag", "check", map[string]any{"kind": "artifact", "repository": repo + ":1.0"}, nil, nil,
			[]string{"source.repository must not carry a tag or digest"}},
		{"unknown params key", "out", map[string]any{"kind": "artifact", "repository": repo}, nil, map[string]any{"path": "rendered", "revison": "x"},
			[]string{`params: unknown key "revison" (did you mean "revision"?)`}},
		{"no path, two tags, bad created", "out", map[string]any{"kind": "artifact", "repository": repo}, nil,
			map[string]any{"tag": "1", "tag_file": "v", "created": "yesterday"},
			[]string{"params.path is required", "params.tag and params.tag_file cannot both be set", `params.created "yesterday"`}},
		{"bad kustomize", "out", map[string]any{"kind": "artifact", "repository": repo}, nil, putParams(map[string]any{"kustomize": "maybe"}),
			[]string{"params.kustomize must be auto, true or false"}},
		{"path out of the build dir", "out", map[string]any{"kind": "artifact", "repository": repo}, nil, map[string]any{"path": "../x"},
			[]string{`params.path: "../x" leaves the build dir`}},
		{"no source or revision and no git dir", "out", map[string]any{"kind": "artifact", "repository": repo}, nil, map[string]any{"path": "rendered"},
			[]string{"params.source is required", "params.revision is required"}},
		{"missing path", "out", map[string]any{"kind": "artifact", "repository": repo}, nil, putParams(map[string]any{"path": "nothing"}),
			[]string{"params.path: nothing does not exist in the build dir"}},
		{"in without version", "in", map[string]any{"kind": "artifact", "repository": repo}, nil, nil,
			[]string{"version.tag and version.digest are required"}},
		{"in with a bad digest and unknown key", "in", map[string]any{"kind": "artifact", "repository": repo}, map[string]any{"tag": "1", "digest": "sha256:abc"}, map[string]any{"skip": true},
			[]string{"version.digest", `params: unknown key "skip"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := r.requests.Load()
			req := map[string]any{"source": tt.source}
			if tt.version != nil {
				req["version"] = tt.version
			}
			if tt.params != nil {
				req["params"] = tt.params
			}
			rt.Run(t, tt.verb, put, req, nil).Fails(t, tt.want...)
			require.Equal(t, before, r.requests.Load(), "no request before the config is valid")
		})
	}
}

// pushLayer pushes a hand-made artifact whose one layer is data.
func pushLayer(t *testing.T, r *reg, repo, tag string, data []byte) map[string]string {
	t.Helper()
	img := fluxImage(t, data)
	ref, err := name.NewTag(repo+":"+tag, name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.Write(ref, img, r.ropts()...))
	d, err := img.Digest()
	require.NoError(t, err)
	return map[string]string{"tag": tag, "digest": d.String()}
}

// tarGz makes a gzip tar of entries, then trailing bytes of zeros after
// the tar's end.
func tarGz(t *testing.T, entries []tarEntry, trailing int64) []byte {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, e := range entries {
		require.NoError(t, tw.WriteHeader(&e.h))
		_, err := tw.Write([]byte(e.body))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	return gz(t, raw.Bytes(), trailing)
}

// gz compresses data followed by trailing zeros.
func gz(t *testing.T, data []byte, trailing int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	gw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	require.NoError(t, err)
	_, err = gw.Write(data)
	require.NoError(t, err)
	zeros := make([]byte, 1<<20)
	for ; trailing > 0; trailing -= int64(len(zeros)) {
		_, err := gw.Write(zeros)
		require.NoError(t, err)
	}
	require.NoError(t, gw.Close())
	return buf.Bytes()
}

// headerOnly is the tar header block of h alone, its body never written.
func headerOnly(t *testing.T, h tar.Header) []byte {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	require.NoError(t, tw.WriteHeader(&h))
	return raw.Bytes()
}

type tarEntry struct {
	h    tar.Header
	body string
}

// TestPutFileAndLeavesOutLinks: a file path is packed as that one file; a
// dir's symlinks are left out (as flux push artifact leaves them), saying
// so; a digest that is not in the registry fails naming it.
func TestPutFileAndLeavesOutLinks(t *testing.T) {
	t.Parallel()
	r := newRegistry(t, "", "")
	repo := r.repo("acme/web-manifests")
	put := t.TempDir()
	writeTree(t, filepath.Join(put, "rendered"), manifests)
	require.NoError(t, os.Symlink("deploy/web.yaml", filepath.Join(put, "rendered", "link.yaml")))
	require.NoError(t, os.Symlink("/etc", filepath.Join(put, "rendered", "etc")))

	var resp rt.Response
	res := rt.Run(t, "out", put, map[string]any{"source": r.source(repo, nil), "params": putParams(nil)}, nil)
	res.OK(t, &resp)
	require.Contains(t, res.Stderr, "left out (not a file or dir, as flux push artifact leaves them out): etc, link.yaml")
	get := t.TempDir()
	rt.Run(t, "in", get, map[string]any{"source": r.source(repo, nil), "version": resp.Version}, nil).OK(t, nil)
	require.Equal(t, manifests, readTree(t, filepath.Join(get, "content")))

	rt.Run(t, "out", put, map[string]any{"source": r.source(repo, nil), "params": putParams(map[string]any{"path": "rendered/deploy/web.yaml", "tag": "one"})}, nil).OK(t, &resp)
	get = t.TempDir()
	rt.Run(t, "in", get, map[string]any{"source": r.source(repo, nil), "version": resp.Version}, nil).OK(t, nil)
	require.Equal(t, map[string]string{"web.yaml": manifests["deploy/web.yaml"]}, readTree(t, filepath.Join(get, "content")))

	missing := map[string]string{"tag": "gone", "digest": "sha256:" + strings.Repeat("ab", 32)}
	rt.Run(t, "in", t.TempDir(), map[string]any{"source": r.source(repo, nil), "version": missing}, nil).
		Fails(t, "read "+repo+"@sha256:abab", "not found")
}
