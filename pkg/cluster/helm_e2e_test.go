package cluster_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/gitops-resource/gitops-resource/internal/gittest"
	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
	"github.com/gitops-resource/gitops-resource/internal/testenv/agenttest"
	"github.com/gitops-resource/gitops-resource/internal/testenv/kubetest"
)

var helmReleaseGVR = schema.GroupVersionResource{Group: "helm.toolkit.fluxcd.io", Version: "v2", Resource: "helmreleases"}

// A small chart: one Deployment whose image comes from .Values.image, which
// the manifest kind edits (a mapping with repository and tag).
var webChart = map[string]string{
	"charts/web/Chart.yaml":                "apiVersion: v2\nname: web\nversion: 0.1.0\n",
	"charts/web/values.yaml":               "image:\n  repository: nginx\n  tag: \"1.0\"\n",
	"charts/web/templates/deployment.yaml": kubetest.Deployment("web", `"{{ .Values.image.repository }}:{{ .Values.image.tag }}"`, 1),
}

// brokenTemplate is rejected by the API server: helm's upgrade fails.
const brokenTemplate = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad}\ndata: {count: [1, 2]}\n"

func helmRelease(strategy string) string {
	return `apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: web}
spec:
  interval: 1h
  timeout: 30s
  chart:
    spec:
      chart: ./charts/web
      reconcileStrategy: ` + strategy + `
      interval: 1h
      sourceRef: {kind: GitRepository, name: config}
`
}

func newHelmFixture(t *testing.T, files map[string]string) (*agentFixture, string) {
	env := cluster(t)
	git := gittest.New(t)
	git.CreateRepo(t, "config")
	first := git.Commit(t, "config", "main", files, "web chart at 1.0")
	return &agentFixture{t: t, env: env, git: git, ns: env.Namespace(t)}, first
}

// TestFluxModeHelmRelease runs both ways of waiting for a HelmRelease with
// one Flux (it watches the whole cluster): alone, its chart from the config
// repo (reconcileStrategy Revision), and applied by a Kustomization.
func TestFluxModeHelmRelease(t *testing.T) {
	env := cluster(t)
	agenttest.StartFlux(t, env, agenttest.WithHelmController(""))
	t.Run("alone", testHelmReleaseAlone)
	t.Run("with a kustomization", testHelmReleaseWithKustomization)
}

func testHelmReleaseAlone(t *testing.T) {
	f, _ := newHelmFixture(t, webChart)
	dyn, err := dynamic.NewForConfig(f.env.Config())
	require.NoError(t, err)
	agenttest.Apply(t, f.env, f.ns, agenttest.FluxGitRepository(f.git.HTTPURL("config"))+"---\n"+helmRelease("Revision"))
	// flux-helm, and verify-images to read the workloads' pods when a
	// release fails.
	sa := f.env.ServiceAccount(t, f.ns, append(docRole(t, "flux-helm"), docRole(t, "verify-images")...)...)
	src := map[string]any{"kind": "cluster", "mode": "flux", "kubeconfig": string(sa.Kubeconfig), "namespace": f.ns, "helmrelease": "web"}
	params := map[string]any{"revision_file": "revision", "timeout": "2m"}

	// The first release, then a new tag written by the manifest kind.
	first := f.git.Commit(t, "config", "main", map[string]string{"README": "web\n"}, "touch")
	res := rt.Run(t, "out", f.revisionDir(first), map[string]any{"source": src, "params": params}, nil)
	t.Logf("first release:\n%s", res.Stderr)
	res.OK(t, nil)
	require.Equal(t, "nginx:1.0", f.image())

	dir, sha := f.writeImage("1.1")
	hrs := dyn.Resource(helmReleaseGVR).Namespace(f.ns)
	at := seen(t, hrs, "web", func(u *unstructured.Unstructured) bool {
		attempted, _, _ := unstructured.NestedString(u.Object, "status", "lastAttemptedRevision")
		return attempted == "0.1.0+"+sha[:12] && readyTrue(u)
	})
	var out rt.Response
	res = rt.Run(t, "out", dir, map[string]any{"source": src, "params": params}, rt.Env("deploy", "1"))
	reactedWithin(t, at, time.Now())
	t.Logf("new tag:\n%s", res.Stderr)
	res.OK(t, &out)
	require.Equal(t, "main@sha1:"+sha, out.Version["revision"])
	require.Equal(t, "nginx:1.1", f.image(), "the Deployment runs the new image when out returns")
	require.NotContains(t, res.Stderr, "warning", "the documented Role leaves nothing out")
	require.Contains(t, out.Meta1("helmrelease"), "deployed (chart web@0.1.0+"+sha[:12]+")")

	var versions []map[string]string
	rt.Run(t, "check", "", map[string]any{"source": src}, nil).OK(t, &versions)
	require.Equal(t, []map[string]string{{"revision": "main@sha1:" + sha}}, versions)
	getDir := t.TempDir()
	rt.Run(t, "in", getDir, map[string]any{"source": src, "version": versions[0]}, nil).OK(t, &out)
	require.Equal(t, "HelmRelease/"+f.ns+"/web", out.Meta1("object"))
	status, err := os.ReadFile(filepath.Join(getDir, "status.json"))
	require.NoError(t, err)
	require.Contains(t, string(status), `"lastAttemptedRevision": "0.1.0+`+sha[:12]+`"`)
	_, err = os.Stat(filepath.Join(getDir, "helmchart.json"))
	require.NoError(t, err)

	// A broken chart fails with helm-controller's reason, before the timeout.
	broken := f.git.Commit(t, "config", "main", map[string]string{"charts/web/templates/bad.yaml": brokenTemplate}, "a broken template")
	began := time.Now()
	res = rt.Run(t, "out", f.revisionDir(broken), map[string]any{"source": src, "params": params}, nil)
	t.Logf("broken chart (%s):\n%s", time.Since(began).Round(time.Second), res.Stderr)
	res.Fails(t, "HelmRelease "+f.ns+"/web", "the agent reports a failure", "bad")
	require.Less(t, time.Since(began), time.Minute)

	// The fix recovers.
	fixed := f.git.Commit(t, "config", "main", map[string]string{"charts/web/templates/bad.yaml": gittest.Deleted}, "remove the broken template")
	res = rt.Run(t, "out", f.revisionDir(fixed), map[string]any{"source": src, "params": params}, nil)
	t.Logf("fix:\n%s", res.Stderr)
	res.OK(t, &out)
	require.Equal(t, "main@sha1:"+fixed, out.Version["revision"])

	// A release whose pods cannot be scheduled: helm's wait times out, and
	// the failure says what the workload's pods wait for.
	_, err = hrs.Patch(t.Context(), "web", types.MergePatchType, []byte(`{"spec":{"timeout":"10s"}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	stuck := f.git.Commit(t, "config", "main", map[string]string{"charts/web/templates/deployment.yaml": strings.Replace(webChart["charts/web/templates/deployment.yaml"],
		"    spec:\n", "    spec:\n      nodeSelector: {no-such-label: \"true\"}\n", 1)}, "web on no node")
	began = time.Now()
	res = rt.Run(t, "out", f.revisionDir(stuck), map[string]any{"source": src, "params": params}, nil)
	t.Logf("unschedulable (%s):\n%s", time.Since(began).Round(time.Second), res.Stderr)
	res.Fails(t, "HelmRelease "+f.ns+"/web", "the agent reports a failure", "its workloads:", "Deployment/"+f.ns+"/web")
	require.Contains(t, res.Stderr, "Unschedulable", "the pods' reason is reported")
}

func testHelmReleaseWithKustomization(t *testing.T) {
	files := map[string]string{"deploy/release.yaml": helmRelease("ChartVersion") + "  values:\n    image:\n      repository: nginx\n      tag: \"1.0\"\n"}
	for k, v := range webChart {
		files[k] = v
	}
	f, first := newHelmFixture(t, files)
	dyn, err := dynamic.NewForConfig(f.env.Config())
	require.NoError(t, err)
	agenttest.Apply(t, f.env, f.ns, agenttest.FluxKustomization("apps", f.git.HTTPURL("config"), "./deploy", f.ns, 0))
	sa := f.env.ServiceAccount(t, f.ns, append(docRole(t, "flux"), docRole(t, "flux-helm")...)...)
	src := map[string]any{"kind": "cluster", "mode": "flux", "kubeconfig": string(sa.Kubeconfig), "namespace": f.ns, "kustomization": "apps", "helmrelease": "web"}
	params := map[string]any{"revision_file": "revision", "timeout": "2m"}

	// The first release (install), then a new tag in the HelmRelease's
	// values: a new generation, an upgrade.
	var out rt.Response
	res := rt.Run(t, "out", f.revisionDir(first), map[string]any{"source": src, "params": params}, nil)
	t.Logf("first release:\n%s", res.Stderr)
	res.OK(t, &out)
	require.Equal(t, "nginx:1.0", f.image())
	require.Contains(t, out.Meta1("helmrelease"), "release web.v1 deployed (chart web@0.1.0)")

	dir, sha := f.writeImage("1.1")
	hrs := dyn.Resource(helmReleaseGVR).Namespace(f.ns)
	at := seen(t, hrs, "web", func(u *unstructured.Unstructured) bool {
		observed, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
		return u.GetGeneration() == 2 && observed == 2 && readyTrue(u)
	})
	res = rt.Run(t, "out", dir, map[string]any{"source": src, "params": params}, nil)
	reactedWithin(t, at, time.Now())
	t.Logf("new tag:\n%s", res.Stderr)
	res.OK(t, &out)
	require.Equal(t, "main@sha1:"+sha, out.Version["revision"])
	require.Equal(t, "nginx:1.1", f.image())
	require.Contains(t, out.Meta1("helmrelease"), "generation 2 (observed 2)")
	require.Contains(t, out.Meta1("helmrelease"), "release web.v2 deployed (chart web@0.1.0)")

	var versions []map[string]string
	res = rt.Run(t, "check", "", map[string]any{"source": src}, nil)
	res.OK(t, &versions)
	require.Equal(t, []map[string]string{{"revision": "main@sha1:" + sha}}, versions)
	require.Contains(t, res.Stderr, "HelmRelease/"+f.ns+"/web: Ready=True")
	getDir := t.TempDir()
	rt.Run(t, "in", getDir, map[string]any{"source": src, "version": versions[0]}, nil).OK(t, &out)
	hr, err := os.ReadFile(filepath.Join(getDir, "helmrelease.json"))
	require.NoError(t, err)
	require.Contains(t, string(hr), `"status": "deployed"`)

	// Values the chart rejects: the Kustomization applies them fine, the
	// release fails, with helm-controller's message.
	broken := f.git.Commit(t, "config", "main", map[string]string{"charts/web/templates/bad.yaml": brokenTemplate,
		"charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.2.0\n"}, "a broken chart version")
	began := time.Now()
	res = rt.Run(t, "out", f.revisionDir(broken), map[string]any{"source": src, "params": params}, nil)
	t.Logf("broken chart (%s):\n%s", time.Since(began).Round(time.Second), res.Stderr)
	res.Fails(t, "HelmRelease "+f.ns+"/web", "the agent reports a failure", "bad")
	require.Less(t, time.Since(began), time.Minute)

	fixed := f.git.Commit(t, "config", "main", map[string]string{"charts/web/templates/bad.yaml": gittest.Deleted,
		"charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.3.0\n"}, "fixed chart")
	res = rt.Run(t, "out", f.revisionDir(fixed), map[string]any{"source": src, "params": params}, nil)
	t.Logf("fix:\n%s", res.Stderr)
	res.OK(t, &out)
	require.Contains(t, out.Meta1("helmrelease"), "deployed (chart web@0.3.0)")
	_, err = f.env.Client().AppsV1().Deployments(f.ns).Get(t.Context(), "web", metav1.GetOptions{})
	require.NoError(t, err)
}

func readyTrue(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == "Ready" {
			return m["status"] == "True"
		}
	}
	return false
}
