package concourse

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitops-resource/gitops-resource/internal/gittest"
	"github.com/gitops-resource/gitops-resource/internal/testenv/agenttest"
	cc "github.com/gitops-resource/gitops-resource/internal/testenv/concourse"
	"github.com/gitops-resource/gitops-resource/internal/testenv/giteatest"
	"github.com/gitops-resource/gitops-resource/internal/testenv/kubetest"
)

// needRuntime fails (CI) or skips the test when the machine cannot run the
// stack: root, Debian packages, the concourse build.
func needRuntime(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs a Concourse stack: not under -short")
	}
	if err := cc.CheckRuntime(); err != nil {
		missing(t, "%v", err)
	}
}

// controlPlane starts a Full control plane for the cluster part, or returns
// nil (outside CI) when its binaries are not built.
func controlPlane(t *testing.T) *kubetest.Env {
	t.Helper()
	env, err := kubetest.Start(t.Context(), kubetest.Full)
	if errors.Is(err, kubetest.ErrNoBinaries) && !inCI() {
		t.Logf("no control plane (%v): running without the cluster put; `make tools` builds it", err)
		return nil
	}
	require.NoError(t, err, "start control plane")
	t.Cleanup(func() { env.Stop() })
	return env
}

// logWriter sends what the stack logs to t.Log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// e2e is what every pipeline of TestConcourseEndToEnd shares: the stack
// (internal/testenv/concourse) with the git server and, when built, the
// control plane.
type e2e struct{ *cc.Env }

// TestConcourseEndToEnd runs pipelines-examples/push-direct, flux, argocd,
// oci and protected-main (without their image build: testdata/pipeline.yml)
// on a real Concourse:
// the gitops image from this tree, pulled from a local registry by the
// worker, bumps the version in a git repo, writes the new tag into the config
// repo and delivers it: applied and rolled out (direct), or handed to a real
// Flux or Argo CD and waited for. Without a control plane (outside CI) only
// the git part of push-direct (and protected-main) runs; without the agents,
// their pipelines skip, and without a Gitea built, protected-main.
func TestConcourseEndToEnd(t *testing.T) {
	needRuntime(t)
	start := time.Now()
	e := up(t, gittest.New(t), controlPlane(t))

	t.Run("push-direct", e.pushDirect)
	t.Run("flux", e.flux)
	t.Run("argocd", e.argoCD)
	t.Run("oci", e.oci)
	t.Run("protected-main", e.protectedMain)
	t.Logf("total %s", time.Since(start).Round(100*time.Millisecond))
}

// pushDirect: example (a), semver → manifest → cluster direct.
func (e *e2e) pushDirect(t *testing.T) {
	var ns string
	if e.Kube != nil {
		ns = e.Kube.Namespace(t)
	}
	cfg, out, err := e.PushDirect(t.Context(), t.TempDir(), ns)
	require.NoError(t, err)
	e.requireGreen(t, "direct", out)

	got := e.Git.Git(t, cfg, "show", "main:deploy/deployment.yaml")
	require.Equal(t, cc.Deployment(cc.WebRepository+":0.1.1"), got+"\n", "only the tag changes")
	trailers := e.Git.Git(t, cfg, "log", "-1", "--format=%B", "main")
	require.Contains(t, trailers, "build-and-deploy", "the commit links back to the build:\n%s", trailers)
	if e.Kube != nil {
		e.requireRunning(t, ns, cc.WebRepository+":0.1.1")
	}
}

// flux: example (b), the config pinned by digest, then the flux put waits
// for a real Flux to apply that commit.
func (e *e2e) flux(t *testing.T) {
	e.needKube(t)
	agenttest.StartFlux(t, e.Kube)
	repo, digest := e.appImage(t)
	cfg := e.repos(t, "flux", cc.Deployment(repo+":0.1.0"))
	ns := e.Kube.Namespace(t)
	agenttest.Apply(t, e.Kube, ns, agenttest.FluxKustomization("web", e.Git.HTTPURL(cfg), "./deploy", ns, 30*time.Second))
	e.deliver(t, "flux", map[string]string{"image-repository": repo, "namespace": ns})
	e.requirePulled(t, cfg, ns, repo+":0.1.1@"+digest)
}

// argoCD: example (c), the same with a real Argo CD and sync: true.
func (e *e2e) argoCD(t *testing.T) {
	e.needKube(t)
	argo := agenttest.StartArgoCD(t, e.Kube)
	repo, digest := e.appImage(t)
	cfg := e.repos(t, "argocd", cc.Deployment(repo+":0.1.0"))
	ns := e.Kube.Namespace(t)
	agenttest.Apply(t, e.Kube, argo.Namespace(), agenttest.ArgoCDApplication(ns, e.Git.HTTPURL(cfg), "deploy", ns))
	e.deliver(t, "argocd", map[string]string{"image-repository": repo, "namespace": argo.Namespace(), "application": ns})
	e.requirePulled(t, cfg, ns, repo+":0.1.1@"+digest)
}

// oci: example oci, gitless: the manifests (the Deployment pinned by
// digest) put as an artifact to the stack's registry (kind artifact), a
// real Flux pulls it through an OCIRepository and applies it, and the flux
// put waits for that digest. Flux runs on the host and the registry listens
// inside the stack's network namespace: Flux reaches it through a proxy on
// the host's 127.0.0.1.
func (e *e2e) oci(t *testing.T) {
	e.needKube(t)
	agenttest.StartFlux(t, e.Kube)
	repo, digest := e.appImage(t)
	cfg := e.repos(t, "oci", cc.Deployment(repo+":0.1.0")) // oci-app holds the version line
	ns := e.Kube.Namespace(t)
	registry := &url.URL{Scheme: "http", Host: e.Stack.Registry()}
	proxy := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(registry); r.Out.Host = registry.Host },
		Transport: e.Stack.RegistryTransport(),
	})
	t.Cleanup(proxy.Close)
	agenttest.Apply(t, e.Kube, ns, agenttest.FluxOCIKustomization("web", strings.TrimPrefix(proxy.URL, "http://")+"/web-manifests", ">=0.1.0", "./", ns, 30*time.Second))
	ref := repo + ":0.1.1@" + digest
	e.deliver(t, "oci", map[string]string{
		"manifests-repository": e.Stack.Registry() + "/web-manifests",
		"namespace":            ns,
		"deployment":           cc.Deployment(ref),
		"config-revision":      "main@sha1:" + e.Git.Branches(t, cfg)["main"],
	})
	e.requireRunning(t, ns, ref)
}

// protectedMain: example protected-main, push-direct into a config repo on
// a real Gitea (giteatest, on the host, exposed in the stack's namespace)
// whose main takes no pushes: the config put opens a pull request and merges
// it through Gitea's API, and the cluster put (direct) applies the merge
// commit, stamping it as the objects' revision.
func (e *e2e) protectedMain(t *testing.T) {
	const mode = "protected-main"
	forge := giteatest.Start(t)
	app := mode + "-app"
	e.Git.CreateRepo(t, app)
	e.Git.Commit(t, app, "version", map[string]string{"version": "0.1.0"}, "start at 0.1.0")
	repo := forge.CreateRepo(t, map[string]string{"deploy/deployment.yaml": cc.Deployment(cc.WebRepository + ":0.1.0")})
	repo.Protect(t, "main")
	base := repo.Tip(t, "main")
	addr, err := e.Stack.Expose(strings.TrimPrefix(forge.URL, "http://"))
	require.NoError(t, err)
	vars := map[string]string{
		"image-repository": cc.WebRepository,
		"config-uri":       "http://" + addr + "/" + repo.FullName() + ".git",
		"gitea-token":      forge.Token,
	}
	var ns string
	if e.Kube != nil {
		ns = e.Kube.Namespace(t)
		vars["namespace"] = ns
	}
	out, err := e.Deliver(t.Context(), t.TempDir(), mode, vars)
	require.NoError(t, err)
	e.requireGreen(t, mode, out)
	require.NotContains(t, out, forge.Token, "the token stays out of the build log")

	c := forge.Client(t)
	prs, _, err := c.ListRepoPullRequests(repo.Owner, repo.Name, gitea.ListPullRequestsOptions{State: gitea.StateAll})
	require.NoError(t, err)
	require.Len(t, prs, 1, "one pull request carries the change")
	pr := prs[0]
	require.True(t, pr.HasMerged, "the put merged %s", pr.HTMLURL)
	require.NotNil(t, pr.MergedCommitID)
	require.NotNil(t, pr.Head)
	merge := *pr.MergedCommitID
	// The put opened it, merged its head through the API (not a person:
	// nobody else touches the repo) and waited for the merge.
	require.Contains(t, out, fmt.Sprintf("opened pull request #%d: ", pr.Index))
	require.Contains(t, out, "(merge) at "+pr.Head.Sha[:12])
	require.Contains(t, out, "is merged: "+merge[:12]+" is on main")
	require.Equal(t, merge, repo.Tip(t, "main"), "main's tip is the merge commit")
	commit, _, err := c.GetSingleCommit(repo.Owner, repo.Name, merge)
	require.NoError(t, err)
	parents := make([]string, len(commit.Parents))
	for i, p := range commit.Parents {
		parents[i] = p.SHA
	}
	require.Equal(t, []string{base, pr.Head.Sha}, parents, "a merge of the pull request's head into main")
	require.Equal(t, cc.Deployment(cc.WebRepository+":0.1.1"), repo.ReadFile(t, "main", "deploy/deployment.yaml"), "only the tag changes")
	if e.Kube != nil {
		e.requireRunning(t, ns, cc.WebRepository+":0.1.1")
		d, err := e.Kube.Client().AppsV1().Deployments(ns).Get(t.Context(), "web", metav1.GetOptions{})
		require.NoError(t, err)
		require.Equal(t, merge, d.Annotations["gitops-resource.io/revision"], "the cluster put applied the merge commit")
	}
}

// up brings the stack up (cc.Up) for the test, and down at its end, after
// logging the end of web's and the worker's logs when the test failed.
func up(t *testing.T, git *gittest.Server, kube *kubetest.Env) *e2e {
	t.Helper()
	env, err := cc.Up(t.Context(), logWriter{t}, git, kube)
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			for _, name := range []string{"web", "worker"} {
				t.Logf("── last of %s.log:\n%s", name, env.Stack.Logs(name, 40))
			}
		}
		if err := env.Close(); err != nil {
			t.Error(err)
		}
	})
	return &e2e{env}
}

func (e *e2e) needKube(t *testing.T) {
	t.Helper()
	if e.Kube == nil {
		t.Skip("no control plane: `make tools` builds it")
	}
}

// repos creates <mode>-app and <mode>-config (deploy/ holding doc) and
// returns the config repo's name.
func (e *e2e) repos(t *testing.T, mode, doc string) string {
	t.Helper()
	cfg, err := e.Repos(mode, doc)
	require.NoError(t, err)
	return cfg
}

// appImage stands in for the image the build pushed: web:0.1.1 (the version
// the pipeline bumps to) in the stack's registry. It returns the repository
// and the digest the config must pin.
func (e *e2e) appImage(t *testing.T) (repo, digest string) {
	t.Helper()
	repo = e.Stack.Registry() + "/web"
	require.NoError(t, e.Stack.Push(t.Context(), e.Busybox, repo+":0.1.1"))
	d, err := e.Busybox.Digest()
	require.NoError(t, err)
	return repo, d.String()
}

// deliver runs the pipeline for mode to a green build (cc.Env.Deliver).
func (e *e2e) deliver(t *testing.T, mode string, vars map[string]string) {
	t.Helper()
	out, err := e.Deliver(t.Context(), t.TempDir(), mode, vars)
	require.NoError(t, err)
	e.requireGreen(t, mode, out)
}

// requireGreen: the build succeeded, and the version line of <mode>-app
// moved to 0.1.1.
func (e *e2e) requireGreen(t *testing.T, mode, out string) {
	t.Helper()
	require.Contains(t, out, "succeeded")
	app := mode + "-app"
	require.Equal(t, "0.1.1", e.Git.Git(t, app, "show", "version:version"))
	require.Contains(t, e.Git.Git(t, app, "log", "-1", "--format=%B", "version"), "0.1.1")
}

// requireRunning: the Deployment in ns runs image, rolled out.
func (e *e2e) requireRunning(t *testing.T, ns, image string) {
	t.Helper()
	d, err := e.Kube.Client().AppsV1().Deployments(ns).Get(t.Context(), "web", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, image, d.Spec.Template.Spec.Containers[0].Image)
	require.Equal(t, int32(1), d.Status.ReadyReplicas, "the put waited for the rollout")
}

// requirePulled: the config repo pins ref, and the agent applied it: the
// Deployment in ns runs it when the pipeline's build is green.
func (e *e2e) requirePulled(t *testing.T, cfg, ns, ref string) {
	t.Helper()
	got := e.Git.Git(t, cfg, "show", "main:deploy/deployment.yaml")
	require.Equal(t, cc.Deployment(ref), got+"\n", "only the reference changes, pinned by digest")
	e.requireRunning(t, ns, ref)
}
