package manifest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/internal/gittest"
	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
)

func TestMain(m *testing.M) { rt.Main(m) }

const (
	digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digestB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func corpus(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "corpus", name))
	require.NoError(t, err)
	return string(data)
}

// fixture is a git server with one repository "deploy" seeded with files on
// branch main.
type fixture struct {
	srv   *gittest.Server
	files map[string]string
	seed  string
}

func newFixture(t *testing.T, files map[string]string) *fixture {
	t.Helper()
	srv := gittest.New(t)
	srv.CreateRepo(t, "deploy")
	seed := srv.Commit(t, "deploy", "main", files, "seed")
	return &fixture{srv: srv, files: files, seed: seed}
}

// newCountingFixture is a config repo with one image reference whose
// server counts the requests it gets, for steps that must fail before any.
func newCountingFixture(t *testing.T) (*fixture, *atomic.Int64) {
	var requests atomic.Int64
	srv := gittest.New(t, gittest.WithHTTPFault(func(*http.Request) gittest.Fault {
		requests.Add(1)
		return gittest.Fault{}
	}))
	srv.CreateRepo(t, "deploy")
	seed := srv.Commit(t, "deploy", "main", map[string]string{"web.yaml": "spec:\n  containers:\n  - image: acme/web:1.0\n"}, "seed")
	return &fixture{srv: srv, seed: seed}, &requests
}

func (f *fixture) source(extra map[string]any) map[string]any {
	s := map[string]any{"kind": "manifest", "uri": f.srv.HTTPURL("deploy"), "branch": "main"}
	for k, v := range extra {
		s[k] = v
	}
	return s
}

func (f *fixture) put(t *testing.T, src, params map[string]any) (rt.Response, rt.Result) {
	t.Helper()
	return f.putIn(t, t.TempDir(), src, params)
}

func (f *fixture) putIn(t *testing.T, dir string, src, params map[string]any) (rt.Response, rt.Result) {
	t.Helper()
	res := rt.Run(t, "out", dir, map[string]any{"source": src, "params": params}, rt.Env("deploy", "3"))
	var out rt.Response
	if res.Code == 0 {
		res.OK(t, &out)
	}
	return out, res
}

func (f *fixture) read(t *testing.T, path string) string {
	t.Helper()
	s, ok := f.srv.ReadFile(t, "deploy", "main", path)
	require.True(t, ok, "%s exists", path)
	return s
}

// requireFile compares the whole file on the branch to want, byte for byte.
func (f *fixture) requireFile(t *testing.T, path, want string) {
	t.Helper()
	require.Equal(t, want, f.read(t, path), path)
}

func TestWorkloadHelmAndKustomizeTargets(t *testing.T) {
	t.Parallel()
	multi := "# two workloads and a service\n" +
		"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n" +
		"      initContainers:\n        - name: migrate\n          image: \"ghcr.io/stefanprodan/podinfo:6.14.1\"   # keep quotes\n" +
		"      containers:\n        - name: web\n          image: ghcr.io/stefanprodan/podinfo:6.14.1\n" +
		"        - name: sidecar\n          image: ghcr.io/stefanprodan/podinfo-sidecar:6.14.1\n" +
		"---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\n" +
		"---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: other\nspec:\n  template:\n    spec:\n" +
		"      containers:\n      - name: other\n        image: ghcr.io/stefanprodan/podinfo:6.14.1@" + digestA + "\n"
	kust := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - deployment.yaml\nimages:\n" +
		"  - name: ghcr.io/stefanprodan/podinfo\n    newTag: 6.14.1 # pinned by CI\n  - name: redis\n    newTag: \"7.2\"\n"
	files := map[string]string{
		"apps/deployment.yaml":    corpus(t, "podinfo/deployment.yaml"),
		"apps/cronjob.yaml":       corpus(t, "podinfo/cronjob-backup-daily.yaml"),
		"apps/statefulset.yaml":   corpus(t, "podinfo/statefulset-primary.yaml"),
		"apps/multi.yaml":         multi,
		"apps/kustomization.yaml": kust,
		"chart/values.yaml":       corpus(t, "podinfo/values.yaml"),
		"chart/Chart.yaml":        "apiVersion: v2\nname: podinfo\nversion: 1.0.0\n",
		"chart/templates/dep.yaml": "spec:\n  image: {{ .Values.image.repository }}:{{ .Values.image.tag }}\n" +
			"{{- if .Values.x }}\n  x: 1\n{{- end }}\n",
		"README.md": "podinfo:6.14.1\n",
	}
	fx := newFixture(t, files)
	out, res := fx.put(t, fx.source(nil), map[string]any{"images": []map[string]any{{"repository": "ghcr.io/stefanprodan/podinfo", "tag": "6.15.0"}}})
	res.OK(t, nil)
	for _, p := range []string{"apps/deployment.yaml", "apps/cronjob.yaml", "apps/statefulset.yaml", "chart/values.yaml"} {
		fx.requireFile(t, p, strings.Replace(files[p], "6.14.1", "6.15.0", 1))
	}
	wantMulti := strings.Replace(multi, "\"ghcr.io/stefanprodan/podinfo:6.14.1\"", "\"ghcr.io/stefanprodan/podinfo:6.15.0\"", 1)
	wantMulti = strings.Replace(wantMulti, "image: ghcr.io/stefanprodan/podinfo:6.14.1\n", "image: ghcr.io/stefanprodan/podinfo:6.15.0\n", 1)
	wantMulti = strings.Replace(wantMulti, "podinfo:6.14.1@"+digestA, "podinfo:6.15.0", 1) // a tag alone drops the stale digest
	fx.requireFile(t, "apps/multi.yaml", wantMulti)
	require.Contains(t, fx.read(t, "apps/multi.yaml"), "podinfo-sidecar:6.14.1", "a longer repository name never matches")
	fx.requireFile(t, "apps/kustomization.yaml", strings.Replace(kust, "newTag: 6.14.1 #", "newTag: 6.15.0 #", 1))
	fx.requireFile(t, "README.md", files["README.md"])
	fx.requireFile(t, "chart/templates/dep.yaml", files["chart/templates/dep.yaml"])

	log := fx.srv.Log(t, "deploy", "main")
	require.Len(t, log, 2, "one commit")
	require.Equal(t, out.Version["ref"], log[0].SHA)
	msg := log[0].Message
	subject, _, _ := strings.Cut(msg, "\n")
	require.Contains(t, subject, "podinfo: 6.14.1 → 6.15.0")
	require.True(t, strings.HasSuffix(subject, "[ci skip]"), subject)
	require.Contains(t, msg, "\nGitops-Resource: manifest\n")
	require.Contains(t, msg, "Image: ghcr.io/stefanprodan/podinfo:6.14.1 -> 6.15.0")
	require.Contains(t, msg, "Concourse-Build-URL: https://ci.example.com/teams/main/pipelines/app/jobs/deploy/builds/3")
	require.Len(t, log[0].Parents, 1)
	require.Contains(t, res.Stderr, "apps/multi.yaml")

	// Idempotence: the same put again makes no commit; the version is the tip.
	out2, res2 := fx.put(t, fx.source(nil), map[string]any{"images": []map[string]any{{"repository": "ghcr.io/stefanprodan/podinfo", "tag": "6.15.0"}}})
	res2.OK(t, nil)
	require.Equal(t, out.Version["ref"], out2.Version["ref"])
	require.Len(t, fx.srv.Log(t, "deploy", "main"), 2)
	require.Contains(t, res2.Stderr, "nothing pushed")
}

func TestReferenceRules(t *testing.T) {
	t.Parallel()
	pod := func(images ...string) string {
		var b strings.Builder
		b.WriteString("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n")
		for i, img := range images {
			fmt.Fprintf(&b, "  - name: c%d\n    image: %s\n", i, img)
		}
		return b.String()
	}
	podYAML := pod("nginx:1.25", "docker.io/library/nginx:1.25", "index.docker.io/library/nginx:1.25", "library/nginx",
		"acme/web:1.0", "acme/web-worker:1.0", "registry.local:5000/acme/api:1.0", "registry.local:5000/acme/api-x:1.0")
	values := "web:\n  image:\n    repository: acme/web\n    tag: 1.0\nnginx:\n  image:\n    registry: docker.io\n    repository: library/nginx\n    tag: '1.25'\n"
	kust := "images:\n- name: registry.local:5000/acme/api\n  newTag: \"1.0\"\n"
	fx := newFixture(t, map[string]string{"pod.yaml": podYAML, "values.yaml": values, "kustomization.yaml": kust})
	_, res := fx.put(t, fx.source(nil), map[string]any{"images": []map[string]any{
		{"repository": "docker.io/library/nginx", "tag": 1.10}, // a JSON number, as YAML authors write it
		{"repository": "acme/web", "tag": "2024"},
		{"repository": "registry.local:5000/acme/api", "tag": "1.10"},
	}})
	res.OK(t, nil)
	fx.requireFile(t, "pod.yaml", pod("nginx:1.1", "docker.io/library/nginx:1.1", "index.docker.io/library/nginx:1.1", "library/nginx:1.1",
		"acme/web:2024", "acme/web-worker:1.0", "registry.local:5000/acme/api:1.10", "registry.local:5000/acme/api-x:1.0"))
	fx.requireFile(t, "values.yaml", "web:\n  image:\n    repository: acme/web\n    tag: \"2024\"\nnginx:\n  image:\n    registry: docker.io\n    repository: library/nginx\n    tag: '1.1'\n")
	fx.requireFile(t, "kustomization.yaml", "images:\n- name: registry.local:5000/acme/api\n  newTag: \"1.10\"\n")

	// A tag string 1.10 in YAML is quoted so it stays a string.
	_, res = fx.put(t, fx.source(nil), map[string]any{"images": []map[string]any{{"repository": "acme/web", "tag": "1.10"}}})
	res.OK(t, nil)
	require.Contains(t, fx.read(t, "values.yaml"), "    tag: \"1.10\"\n")
}

func TestKustomizeDigestsAndAddedEntry(t *testing.T) {
	t.Parallel()
	base := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: acme/web:1.0\n      - name: cache\n        image: redis:7\n"
	baseK := "resources:\n- deployment.yaml\n"
	prodK := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../../base\nimages:\n  - name: redis\n    newTag: \"7.2\"\n    digest: " + digestA + "\n"
	stagingK := "resources:\n- ../../base\nimages:\n- name: acme/web\n  newTag: 1.0\n"
	fx := newFixture(t, map[string]string{
		"base/deployment.yaml": base, "base/kustomization.yaml": baseK,
		"overlays/prod/kustomization.yaml": prodK, "overlays/staging/kustomization.yaml": stagingK,
	})
	_, res := fx.put(t, fx.source(nil), map[string]any{
		"paths": []string{"overlays/prod"},
		"images": []map[string]any{
			{"repository": "acme/web", "tag": "1.1", "digest": digestB},
			{"repository": "redis", "digest": digestB},
		},
	})
	res.OK(t, nil)
	fx.requireFile(t, "overlays/prod/kustomization.yaml", strings.Replace(prodK, digestA, digestB, 1)+
		"  - name: acme/web\n    newTag: \"1.1\"\n    digest: "+digestB+"\n")
	fx.requireFile(t, "base/deployment.yaml", base)
	fx.requireFile(t, "overlays/staging/kustomization.yaml", stagingK)
	require.Contains(t, res.Stderr, "added an images entry")

	// Staging has an entry without a digest: the digest key is added to it.
	_, res = fx.put(t, fx.source(nil), map[string]any{"paths": []string{"overlays/staging"},
		"images": []map[string]any{{"repository": "acme/web", "tag": "1.2", "digest": digestA}}})
	res.OK(t, nil)
	fx.requireFile(t, "overlays/staging/kustomization.yaml", "resources:\n- ../../base\nimages:\n- name: acme/web\n  newTag: \"1.2\"\n  digest: "+digestA+"\n")

	// Not limited by paths: the base reference is edited in place, no entry is added.
	_, res = fx.put(t, fx.source(nil), map[string]any{"images": []map[string]any{{"repository": "redis", "tag": "7.4"}}})
	res.OK(t, nil)
	require.Contains(t, fx.read(t, "base/deployment.yaml"), "image: redis:7.4\n")
	require.NotContains(t, fx.read(t, "overlays/staging/kustomization.yaml"), "redis")
	require.Contains(t, fx.read(t, "overlays/prod/kustomization.yaml"), "  - name: redis\n    newTag: \"7.4\"\n    digest: \"\"\n", "a tag alone clears the stale digest")
}

func TestValuePathsAndSetters(t *testing.T) {
	t.Parallel()
	values := "app:\n  img: acme/web:1.0 # whole reference\nworker:\n  image:\n    name: acme/web\n    version: \"1.0\"\n"
	release := "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nspec:\n  values:\n    web:\n      version: 1.0 # {\"$imagepolicy\": \"flux-system:web:tag\"}\n" +
		"    api:\n      ref: acme/api:3.0 # {\"$imagepolicy\": \"flux-system:api\"}\n"
	fx := newFixture(t, map[string]string{"values.yaml": values, "release.yaml": release})
	src := fx.source(map[string]any{"value_paths": []map[string]any{{"repository": "app.img"}, {"repository": "worker.image.name", "tag": "worker.image.version"}}})
	_, res := fx.put(t, src, map[string]any{"images": []map[string]any{
		{"repository": "acme/web", "tag": "1.1"},
		{"setter": "flux-system:web", "tag": "1.1"},
		{"repository": "acme/api", "tag": "3.1"},
	}})
	res.OK(t, nil)
	fx.requireFile(t, "values.yaml", "app:\n  img: acme/web:1.1 # whole reference\nworker:\n  image:\n    name: acme/web\n    version: \"1.1\"\n")
	fx.requireFile(t, "release.yaml", strings.Replace(strings.Replace(release, "version: 1.0", "version: \"1.1\"", 1), "acme/api:3.0", "acme/api:3.1", 1))

	// in reports them all in images.json.
	dir := t.TempDir()
	tip := fx.srv.Tip(t, "deploy", "main")
	rt.Run(t, "in", dir, map[string]any{"source": src, "version": map[string]string{"ref": tip}}, nil).OK(t, nil)
	var found []map[string]any
	data, err := os.ReadFile(filepath.Join(dir, ".git", "gitops", "images.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &found))
	var sources []string
	for _, f := range found {
		sources = append(sources, fmt.Sprint(f["file"], " ", f["source"], " ", f["path"]))
	}
	sort.Strings(sources)
	require.Equal(t, []string{
		"release.yaml setter spec.values.api.ref",
		"release.yaml setter spec.values.web.version",
		"values.yaml value-path app.img",
		"values.yaml value-path worker.image.name",
	}, sources)
}

// registryServer serves a loopback registry behind basic auth with
// acme/web:1.1.0 pushed; it returns the repository and the digest.
func registryServer(t *testing.T, user, pass string) (string, string) {
	t.Helper()
	inner := ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	repo := strings.TrimPrefix(srv.URL, "http://") + "/acme/web"
	img, err := random.Image(128, 1)
	require.NoError(t, err)
	ref, err := name.NewTag(repo+":1.1.0", name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.Write(ref, img, remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: user, Password: pass}))))
	d, err := img.Digest()
	require.NoError(t, err)
	return repo, d.String()
}

func TestResolveDigest(t *testing.T) {
	t.Parallel()
	repo, digest := registryServer(t, "robot", "registry-s3cret")
	dep := "spec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: " + repo + ":1.0.0@" + digestA + "\n"
	fx := newFixture(t, map[string]string{"deploy.yaml": dep})
	src := fx.source(map[string]any{"registry_username": "robot", "registry_password": "registry-s3cret"})
	_, res := fx.put(t, src, map[string]any{"resolve_digest": true, "images": []map[string]any{{"repository": repo, "tag": "1.1.0"}}})
	res.OK(t, nil)
	res.NoSecrets(t, "registry-s3cret")
	fx.requireFile(t, "deploy.yaml", strings.Replace(dep, "1.0.0@"+digestA, "1.1.0@"+digest, 1))

	tip := fx.srv.Tip(t, "deploy", "main")
	_, res = fx.put(t, src, map[string]any{"resolve_digest": true, "images": []map[string]any{{"repository": repo, "tag": "9.9.9"}}})
	res.Fails(t, repo, "9.9.9", "does not exist")
	require.Equal(t, tip, fx.srv.Tip(t, "deploy", "main"), "nothing was committed")

	_, res = fx.put(t, fx.source(map[string]any{"registry_username": "robot", "registry_password": "wrong-password"}),
		map[string]any{"resolve_digest": true, "images": []map[string]any{{"repository": repo, "tag": "1.1.0"}}})
	res.Fails(t, "registry_username")
	res.NoSecrets(t, "wrong-password")
}

func TestPromote(t *testing.T) {
	t.Parallel()
	staging := "resources:\n- ../../base\nimages:\n- name: acme/web\n  newTag: 1.2.0\n  digest: " + digestA + "\n- name: acme/api\n  newTag: \"2.0\"\n"
	prod := "resources:\n- ../../base\nimages:\n- name: acme/web # the shop\n  newTag: 1.1.0\n- name: acme/api\n  newTag: \"1.9\"\n  digest: " + digestB + "\n"
	fx := newFixture(t, map[string]string{"overlays/staging/kustomization.yaml": staging, "overlays/prod/kustomization.yaml": prod,
		"base/kustomization.yaml": "resources: []\n"})
	_, res := fx.put(t, fx.source(nil), map[string]any{"promote": map[string]any{"from": "overlays/staging", "to": "overlays/prod"}})
	res.OK(t, nil)
	fx.requireFile(t, "overlays/prod/kustomization.yaml", "resources:\n- ../../base\nimages:\n- name: acme/web # the shop\n  newTag: 1.2.0\n  digest: "+digestA+"\n- name: acme/api\n  newTag: \"2.0\"\n  digest: \"\"\n")
	fx.requireFile(t, "overlays/staging/kustomization.yaml", staging)
}

// TestConcurrentPutsAllLand: 8 processes at once against one file, six
// with different images and three with the same one: every write lands
// once, the file is what a serial run gives, no merge commits.
func TestConcurrentPutsAllLand(t *testing.T) {
	t.Parallel()
	names := []string{"alpha", "beta", "gamma", "delta", "epsilon", "zeta"}
	puts := append([]string{"alpha", "alpha"}, names...)
	var b strings.Builder
	b.WriteString("spec:\n  template:\n    spec:\n      containers:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "      - name: %s\n        image: acme/%s:1.0\n", n, n)
	}
	fx := newFixture(t, map[string]string{"deploy.yaml": b.String()})
	var wg sync.WaitGroup
	results := make([]rt.Result, len(puts))
	for i, n := range puts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, results[i] = fx.put(t, fx.source(nil), map[string]any{"images": []map[string]any{{"repository": "acme/" + n, "tag": "2.0"}}})
		}()
	}
	wg.Wait()
	for _, r := range results {
		r.OK(t, nil)
	}
	want := strings.ReplaceAll(b.String(), ":1.0", ":2.0")
	fx.requireFile(t, "deploy.yaml", want)
	log := fx.srv.Log(t, "deploy", "main")
	require.Len(t, log, len(names)+1, "one commit per distinct change: the same image twice commits once")
	for _, c := range log {
		require.LessOrEqual(t, len(c.Parents), 1, "no merge commits")
	}
}

func TestBrokenYAMLFailsWithFileAndLine(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, map[string]string{
		"apps/ok.yaml":     "spec:\n  containers:\n  - name: web\n    image: acme/web:1.0\n",
		"apps/broken.yaml": "a: 1\nb: [1, 2\nc: 3\n",
	})
	tip := fx.srv.Tip(t, "deploy", "main")
	_, res := fx.put(t, fx.source(nil), map[string]any{"images": []map[string]any{{"repository": "acme/web", "tag": "2.0"}}})
	res.Fails(t, "apps/broken.yaml:")
	require.Regexp(t, `apps/broken\.yaml:\d+:`, res.Stderr)
	require.Equal(t, tip, fx.srv.Tip(t, "deploy", "main"))

	// Outside paths the broken file does not matter.
	_, res = fx.put(t, fx.source(map[string]any{"paths": []string{"apps/ok.yaml"}}), map[string]any{"images": []map[string]any{{"repository": "acme/web", "tag": "2.0"}}})
	res.OK(t, nil)
}

func TestParamFilesAndFromDir(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, map[string]string{"d.yaml": "spec:\n  containers:\n  - name: a\n    image: ghcr.io/acme/a:1.0\n  - name: b\n    image: acme/b:1.0\n"})
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "img"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "img", "repository"), []byte("ghcr.io/acme/a\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "img", "tag"), []byte("1.5\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "img", "digest"), []byte(digestA+"\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "version"), []byte("3.0\n"), 0o644))
	_, res := fx.putIn(t, dir, fx.source(nil), map[string]any{"ci_skip": false, "commit_message": "deploy %images%",
		"images": []map[string]any{{"from": "img"}, {"repository": "acme/b", "tag_file": "version"}}})
	res.OK(t, nil)
	fx.requireFile(t, "d.yaml", "spec:\n  containers:\n  - name: a\n    image: ghcr.io/acme/a:1.5@"+digestA+"\n  - name: b\n    image: acme/b:3.0\n")
	subject, _, _ := strings.Cut(fx.srv.Log(t, "deploy", "main")[0].Message, "\n")
	require.Equal(t, "deploy a=1.5@sha256:aaaaaaaaaaaa b=3.0", subject)

	_, res = fx.putIn(t, dir, fx.source(nil), map[string]any{"images": []map[string]any{
		{"repository": "acme/b", "tag_file": "missing"}, {"repository": "acme/b", "tag_file": "../etc/passwd"}}})
	res.Fails(t, "params.images[0].tag_file", "params.images[1].tag_file")
}

func TestCheck(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, map[string]string{"apps/web.yaml": "image: a\n", "docs/x.md": "x"})
	c1 := fx.srv.Commit(t, "deploy", "main", map[string]string{"docs/x.md": "y"}, "docs only")
	c2 := fx.srv.Commit(t, "deploy", "main", map[string]string{"apps/web.yaml": "image: b\n"}, "apps")
	c3 := fx.srv.Commit(t, "deploy", "main", map[string]string{"apps/web.yaml": "image: c\n"}, "web: 1 → 2 [ci skip]\n\nGitops-Resource: manifest")
	c4 := fx.srv.Commit(t, "deploy", "main", map[string]string{"apps/README.md": "r"}, "ignored path")
	_ = c1
	src := fx.source(map[string]any{"paths": []string{"apps"}, "ignore_paths": []string{"apps/*.md"}, "ignore_own_commits": true})
	check := func(src map[string]any, version map[string]string) []string {
		req := map[string]any{"source": src}
		if version != nil {
			req["version"] = version
		}
		var vs []map[string]string
		rt.Run(t, "check", "", req, nil).OK(t, &vs)
		var out []string
		for _, v := range vs {
			out = append(out, v["ref"])
		}
		return out
	}
	require.Equal(t, []string{c2}, check(src, nil), "latest matching, own commit and ignored paths skipped")
	require.Equal(t, []string{fx.seed, c2}, check(src, map[string]string{"ref": fx.seed}))
	require.Equal(t, []string{c2}, check(src, map[string]string{"ref": c2}))
	src["ignore_own_commits"], src["disable_ci_skip"] = false, true // c3 says [ci skip]
	require.Equal(t, []string{c2, c3}, check(src, map[string]string{"ref": c2}))
	require.Equal(t, []string{c4}, check(fx.source(nil), nil), "no paths: every commit")
	require.Equal(t, []string{c3}, check(src, map[string]string{"ref": strings.Repeat("0", 40)}), "unknown ref: the latest")

	// A long history: the requested commit lies beyond the first fetch.
	fx.srv.SeedHistory(t, "deploy", "main", 150, func(i int) map[string]string {
		return map[string]string{"docs/x.md": fmt.Sprint(i)}
	})
	require.Equal(t, []string{c2, c3}, check(src, map[string]string{"ref": c2}))
}

func TestInWritesTreeImagesAndArchive(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, map[string]string{"apps/d.yaml": "spec:\n  containers:\n  - name: a\n    image: acme/a:1.0\n", "other/x.yaml": "image: x\n"})
	first := fx.seed
	fx.srv.Commit(t, "deploy", "main", map[string]string{"apps/d.yaml": "spec:\n  containers:\n  - name: a\n    image: acme/a:2.0\n"}, "bump")
	src := fx.source(map[string]any{"paths": []string{"apps"}})
	dir := t.TempDir()
	var out rt.Response
	rt.Run(t, "in", dir, map[string]any{"source": src, "version": map[string]string{"ref": first}, "params": map[string]any{"archive": true}}, nil).OK(t, &out)
	require.Equal(t, first, out.Version["ref"])
	require.Equal(t, []string{"seed"}, out.Meta("message"))
	ref, err := os.ReadFile(filepath.Join(dir, ".git", "ref"))
	require.NoError(t, err)
	require.Equal(t, first, strings.TrimSpace(string(ref)))
	d, err := os.ReadFile(filepath.Join(dir, "apps", "d.yaml"))
	require.NoError(t, err)
	require.Contains(t, string(d), "acme/a:1.0", "the tree at the requested commit, not the tip")
	var found []map[string]any
	data, err := os.ReadFile(filepath.Join(dir, ".git", "gitops", "images.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &found))
	require.Equal(t, []map[string]any{{"file": "apps/d.yaml", "document": float64(0), "path": "spec.containers[0].image",
		"repository": "acme/a", "tag": "1.0", "source": "workload"}}, found)

	require.Equal(t, []string{"apps/d.yaml"}, archiveNames(t, filepath.Join(dir, ".git", "gitops", "manifests.tgz")))
}

func TestPushBranch(t *testing.T) {
	t.Parallel()
	dep := "containers:\n- name: web\n  image: acme/web:1.0\n"
	fx := newFixture(t, map[string]string{"d.yaml": dep})
	params := func(tag string) map[string]any {
		return map[string]any{"push_branch": "deploy/web", "images": []map[string]any{{"repository": "acme/web", "tag": tag}}}
	}
	out, res := fx.put(t, fx.source(nil), params("1.1"))
	res.OK(t, nil)
	require.Equal(t, fx.seed, fx.srv.Tip(t, "deploy", "main"), "source.branch untouched")
	log := fx.srv.Log(t, "deploy", "deploy/web")
	require.Len(t, log, 2)
	require.Equal(t, out.Version["ref"], log[0].SHA)
	require.Equal(t, []string{fx.seed}, log[0].Parents)
	got, _ := fx.srv.ReadFile(t, "deploy", "deploy/web", "d.yaml")
	require.Equal(t, strings.Replace(dep, "1.0", "1.1", 1), got)

	// The branch exists now: the next put builds on it.
	_, res = fx.put(t, fx.source(nil), params("1.2"))
	res.OK(t, nil)
	require.Len(t, fx.srv.Log(t, "deploy", "deploy/web"), 3)
}
