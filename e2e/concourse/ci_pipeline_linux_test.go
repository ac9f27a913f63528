package concourse

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh/knownhosts"
	"sigs.k8s.io/yaml"

	"github.com/gitops-resource/gitops-resource/internal/gittest"
	"github.com/gitops-resource/gitops-resource/internal/image"
	cc "github.com/gitops-resource/gitops-resource/internal/testenv/concourse"
)

// TestPipelineCI runs ci/pipeline.yml, the project's own pipeline, on the
// real Concourse of this suite, from the commit under test to a published
// image that the next pipeline uses:
//   - the commit under test (HEAD) is fetched into the suite's git server,
//     which the pipeline reaches over SSH, with a key and a pinned host key,
//     as a team's pipeline reaches its forge;
//   - the tasks run in a Go image made of this machine's Go, git, ssh and
//     openssl (cc.GoImage: there is no Docker Hub here), and get modules
//     from this machine's module cache, served as a GOPROXY (the containers
//     have no Internet);
//   - test (make test-unit) runs on the commit; its success triggers
//     publish (make image), which pushes the index of both platforms as
//     1.0.0, 1.0, 1 and latest, labelled with the commit, and moves the
//     version branch to 1.0.1;
//   - push-direct then runs green with that image, 1.0.0, as its gitops
//     resource type.
func TestPipelineCI(t *testing.T) {
	needRuntime(t)
	start := time.Now()
	git := gittest.New(t)
	e := up(t, git, controlPlane(t))
	s := e.Stack
	ctx := t.Context()

	const repo = "gitops-resource"
	require.NoError(t, git.CreateRepoErr(repo))
	git.Git(t, repo, "fetch", "--no-tags", cc.Root(), "HEAD:refs/heads/main")
	head := trackedHead(t, git, repo)
	sshAddr, err := s.Expose(git.SSHAddr())
	require.NoError(t, err)

	began := time.Now()
	goImage, size, err := cc.GoImage(ctx)
	require.NoError(t, err)
	golang, goTag := s.Registry()+"/golang", strings.TrimPrefix(goEnv(t, "GOVERSION"), "go")
	require.NoError(t, s.Push(ctx, goImage, golang+":"+goTag))
	t.Logf("Go task image %s:%s: %.1f MiB compressed, made and pushed in %s", golang, goTag, float64(size)/(1<<20), time.Since(began).Round(100*time.Millisecond))
	goproxy, err := s.Serve(http.FileServer(http.Dir(filepath.Join(goEnv(t, "GOMODCACHE"), "cache", "download"))))
	require.NoError(t, err)

	published := s.Registry() + "/gitops-resource"
	source := func(repository, tag string) map[string]any { // a registry-image source on the plain-HTTP registry
		return map[string]any{"repository": repository, "tag": tag, "insecure": true}
	}
	vars := map[string]any{
		"repo-uri":          "ssh://git@" + sshAddr + "/" + repo + ".git",
		"git-private-key":   string(git.ClientKey()),
		"git-known-hosts":   knownhosts.Line([]string{knownhosts.Normalize(sshAddr)}, git.HostKey()),
		"image-repository":  published,
		"registry-username": "",
		"registry-password": "",
		"gitops-image":      source(published, e.ResourceTag),
		"golang-image":      source(golang, goTag),
		"goproxy":           goproxy,
	}
	dir := t.TempDir()
	varsFile := filepath.Join(dir, "vars.yml")
	b, err := yaml.Marshal(vars)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(varsFile, b, 0o600))
	require.NoError(t, s.SetPipeline(ctx, "ci", filepath.Join(cc.Root(), "ci", "pipeline.yml"), varsFile, []string{"repo", "version", "golang"}))

	out, err := s.WatchJob(ctx, "ci/test", 20*time.Minute)
	require.NoError(t, err)
	require.Contains(t, out, "ok  \tgithub.com/gitops-resource/gitops-resource/pkg/semver", "make test-unit ran the tests")
	out, err = s.WatchJob(ctx, "ci/publish", 20*time.Minute)
	require.NoError(t, err)
	require.Contains(t, out, "pushed "+published+":1.0.0@sha256:")

	// The index of both platforms, labelled with the commit, under each tag.
	opt := remote.WithTransport(s.RegistryTransport())
	ref, err := name.ParseReference(published + ":1.0.0")
	require.NoError(t, err)
	idx, err := remote.Index(ref, opt)
	require.NoError(t, err)
	digest, err := idx.Digest()
	require.NoError(t, err)
	manifest, err := idx.IndexManifest()
	require.NoError(t, err)
	require.Equal(t, head, manifest.Annotations[image.LabelRevision], "the image is built from the commit under test (the newest one its repo resource tracks)")
	require.Equal(t, "1.0.0", manifest.Annotations[image.LabelVersion])
	var platforms []string
	for _, m := range manifest.Manifests {
		platforms = append(platforms, m.Platform.String())
	}
	require.Equal(t, image.Platforms, platforms)
	for _, tag := range []string{"1.0", "1", "latest"} {
		ref, err := name.ParseReference(published + ":" + tag)
		require.NoError(t, err)
		desc, err := remote.Head(ref, opt)
		require.NoError(t, err)
		require.Equal(t, digest, desc.Digest, "tag %s", tag)
	}
	require.Equal(t, "1.0.1", git.Git(t, repo, "show", "version:version"), "publish moved the version line to the next patch")
	t.Logf("published %s:1.0.0@%s (revision %s)", published, digest, head)

	// The next pipeline runs the image the pipeline published.
	e.ResourceTag = "1.0.0"
	t.Run("push-direct", e.pushDirect)
	t.Logf("total %s", time.Since(start).Round(100*time.Millisecond))
}

// goEnv is `go env key`.
func goEnv(t *testing.T, key string) string {
	t.Helper()
	out, err := exec.Command("go", "env", key).Output()
	require.NoError(t, err, "go env %s", key)
	return strings.TrimSpace(string(out))
}

// trackedHead is the commit the pipeline's repo resource reports for main:
// the newest on its first-parent line that touches a path outside the
// resource's ignore_paths (HEAD itself, unless HEAD changed only docs).
func trackedHead(t *testing.T, git *gittest.Server, repo string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(cc.Root(), "ci", "pipeline.yml"))
	require.NoError(t, err)
	var pipeline struct {
		Resources []struct {
			Name   string
			Source json.RawMessage // an object, or a ((var))
		}
	}
	require.NoError(t, yaml.Unmarshal(data, &pipeline))
	args := []string{"rev-list", "--first-parent", "-1", "main", "--", "."}
	for _, r := range pipeline.Resources {
		if r.Name != "repo" {
			continue
		}
		var source struct {
			IgnorePaths []string `json:"ignore_paths"`
		}
		require.NoError(t, json.Unmarshal(r.Source, &source))
		for _, p := range source.IgnorePaths {
			args = append(args, ":(exclude)"+p)
		}
	}
	return git.Git(t, repo, args...)
}
