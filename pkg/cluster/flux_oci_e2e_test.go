package cluster_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"log"
	"maps"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
	"github.com/gitops-resource/gitops-resource/internal/testenv/agenttest"
)

// Issue #19: gitless delivery. The manifests are an OCI artifact in Flux's
// format in a registry; an OCIRepository follows its semver tags and a
// Kustomization applies it; put in mode flux waits for that digest.

// The media types of an artifact as `flux push artifact` writes it.
const (
	fluxConfigMediaType  types.MediaType = "application/vnd.cncf.flux.config.v1+json"
	fluxContentMediaType types.MediaType = "application/vnd.cncf.flux.content.v1.tar+gzip"
)

// ociRegistry is an in-process registry on 127.0.0.1 (plain HTTP), and the
// repository "127.0.0.1:PORT/web-manifests" in it.
func ociRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://") + "/web-manifests"
}

// pushArtifact pushes files (path → content) as a Flux artifact tagged tag
// to repo, its one layer of media type layer (fluxContentMediaType, or
// another to make one source-controller refuses), and returns its digest
// ("sha256:…").
func pushArtifact(t *testing.T, repo, tag string, files map[string]string, layer types.MediaType) string {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, p := range slices.Sorted(maps.Keys(files)) {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: p, Mode: 0o644, Size: int64(len(files[p])), Typeflag: tar.TypeReg}))
		_, err := tw.Write([]byte(files[p]))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, gz.Close())

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, fluxConfigMediaType)
	img = mutate.Annotations(img, map[string]string{
		"org.opencontainers.image.source":   "https://git.example/acme/web.git",
		"org.opencontainers.image.revision": "main@sha1:3becd003b8704fbc0c7e3f041ff27c51e53ed5f6",
		"org.opencontainers.image.created":  time.Now().UTC().Format(time.RFC3339Nano),
	}).(v1.Image)
	img, err := mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(buf.Bytes(), layer)})
	require.NoError(t, err)
	ref, err := name.NewTag(repo+":"+tag, name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.Write(ref, img, remote.WithContext(t.Context())))
	digest, err := img.Digest()
	require.NoError(t, err)
	return digest.String()
}

// ociManifests is what each artifact holds, at its root: web running
// image, and the settings ConfigMap saying greeting.
func ociManifests(image, greeting string) map[string]string {
	return map[string]string{
		"web.yaml":      strings.Replace(webDeployment, "nginx:1.0 # written by the manifest kind", image, 1),
		"settings.yaml": strings.Replace(settingsConfigMap, "hello", greeting, 1),
	}
}

// digestDir is a build dir holding the digest file an artifact get writes.
func digestDir(t *testing.T, digest string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "digest"), []byte(digest+"\n"), 0o644))
	return dir
}

// shipArtifact is what a pipeline does: a put of kind artifact packs files
// (rendered into the build dir's rendered/) and pushes them tagged tag to
// repo, then its get pulls the artifact into manifests/. It returns the
// build dir, holding manifests/digest, and the digest.
func shipArtifact(t *testing.T, repo, tag string, files map[string]string) (dir, digest string) {
	t.Helper()
	dir = t.TempDir()
	for p, content := range files {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "rendered", filepath.Dir(p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "rendered", p), []byte(content), 0o644))
	}
	src := map[string]any{"kind": "artifact", "repository": repo, "insecure": true}
	var out rt.Response
	rt.Run(t, "out", dir, map[string]any{"source": src, "params": map[string]any{
		"path": "rendered", "tag": tag, "source": "https://git.example/acme/web.git", "revision": "main@sha1:3becd003b8704fbc0c7e3f041ff27c51e53ed5f6",
	}}, rt.Env("ship", "1")).OK(t, &out)
	require.Equal(t, tag, out.Version["tag"])
	require.NoError(t, os.Mkdir(filepath.Join(dir, "manifests"), 0o755))
	rt.Run(t, "in", filepath.Join(dir, "manifests"), map[string]any{"source": src, "version": out.Version}, nil).OK(t, nil)
	got, err := os.ReadFile(filepath.Join(dir, "manifests", "digest"))
	require.NoError(t, err)
	require.Equal(t, out.Version["digest"], strings.TrimSpace(string(got)))
	return dir, out.Version["digest"]
}

// TestFluxModeWaitsForThatArtifact: the real source-controller pulls the
// artifacts pushed to the registry and kustomize-controller applies them;
// put waits for the exact digest, fails fast with Flux's reason on an
// artifact source-controller refuses, and the next good one lands.
func TestFluxModeWaitsForThatArtifact(t *testing.T) {
	env := cluster(t)
	f := &agentFixture{t: t, env: env, ns: env.Namespace(t)}
	f.reportDigests()
	agenttest.StartFlux(t, env)
	repo := ociRegistry(t)
	shipArtifact(t, repo, "1.0.0", ociManifests("nginx:1.0", "hello"))
	agenttest.Apply(t, env, f.ns, agenttest.FluxOCIKustomization("web", repo, ">=1.0.0", "./", f.ns, 0))
	// The pipeline's identity holds only the Roles docs/cluster-rbac.md documents.
	sa := env.ServiceAccount(t, f.ns, append(docRole(t, "flux"), docRole(t, "verify-images")...)...)
	src := map[string]any{"kind": "cluster", "mode": "flux", "kubeconfig": string(sa.Kubeconfig), "namespace": f.ns, "kustomization": "web"}
	byFile := map[string]any{"revision_file": "digest", "timeout": "2m", "verify_images": true}

	// A new artifact, put and got by kind artifact, named by its get's
	// digest file.
	dir, good := shipArtifact(t, repo, "1.0.1", ociManifests("registry.example/web@"+goodDigest, "hello"))
	var out rt.Response
	res := rt.Run(t, "out", dir, map[string]any{"source": src, "params": map[string]any{
		"revision_file": "manifests/digest", "timeout": "2m", "verify_images": true}}, rt.Env("deploy", "1"))
	t.Logf("artifact 1.0.1:\n%s", res.Stderr)
	res.OK(t, &out)
	require.Equal(t, "1.0.1@"+good, out.Version["revision"], "Flux's revision of the artifact: <tag>@<digest>")
	require.Equal(t, "registry.example/web@"+goodDigest, f.image())
	require.Contains(t, res.Stderr, "reconcile requested")
	require.Contains(t, res.Stderr, "image digests verified")
	require.NotContains(t, res.Stderr, "warning", "the documented Roles leave nothing out")

	// An artifact whose layer is not Flux's media type (pushed by the test:
	// kind artifact never makes one): source-controller refuses it, and the
	// Kustomization stays Ready on 1.0.1.
	broken := pushArtifact(t, repo, "1.0.2", ociManifests("nginx:1.2", "broken"), types.OCILayer)
	began := time.Now()
	res = rt.Run(t, "out", digestDir(t, broken), map[string]any{"source": src, "params": byFile}, nil)
	t.Logf("broken artifact 1.0.2 (%s):\n%s", time.Since(began).Round(time.Second), res.Stderr)
	res.Fails(t, "Kustomization "+f.ns+"/web", "OCIRepository "+f.ns+"/manifests refuses revision "+broken,
		"OCIArtifactLayerOperationFailed", "failed to find layer with media type '"+string(fluxContentMediaType)+"'")
	require.Less(t, time.Since(began), time.Minute, "judged on the source's verdict, not the timeout")
	require.Equal(t, "registry.example/web@"+goodDigest, f.image(), "1.0.1 stays applied")

	// Without list/watch on ocirepositories: a warning, and the
	// Kustomization alone is waited for.
	var without []rbacv1.PolicyRule
	for _, r := range docRole(t, "flux") {
		if !slices.Contains(r.Verbs, "watch") || !slices.Contains(r.Resources, "ocirepositories") {
			without = append(without, r)
		}
	}
	limited := maps.Clone(src)
	limited["kubeconfig"] = string(env.ServiceAccount(t, f.ns, without...).Kubeconfig)
	rt.Run(t, "out", digestDir(t, broken), map[string]any{"source": limited, "params": map[string]any{"revision_file": "digest", "timeout": "3s"}}, nil).
		Fails(t, "warning: may not list ocirepositories in namespace "+f.ns, "gave up waiting for revision "+broken)

	// The next good artifact recovers, named as Flux names it.
	_, next := shipArtifact(t, repo, "1.0.3", ociManifests("registry.example/web@"+goodDigest, "hello again"))
	res = rt.Run(t, "out", t.TempDir(), map[string]any{"source": src, "params": map[string]any{"revision": "1.0.3@" + next, "timeout": "2m", "verify_images": true}}, nil)
	t.Logf("artifact 1.0.3:\n%s", res.Stderr)
	res.OK(t, &out)
	require.Equal(t, "1.0.3@"+next, out.Version["revision"])
	cm, err := env.Client().CoreV1().ConfigMaps(f.ns).Get(t.Context(), "settings", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, "hello again", cm.Data["greeting"], "the artifact's content is applied")

	var versions []map[string]string
	rt.Run(t, "check", "", map[string]any{"source": src}, nil).OK(t, &versions)
	require.Equal(t, []map[string]string{{"revision": "1.0.3@" + next}}, versions)
	rt.Run(t, "in", t.TempDir(), map[string]any{"source": src, "version": versions[0]}, nil).OK(t, &out)
	require.Equal(t, "1.0.3@"+next, out.Version["revision"])
}
