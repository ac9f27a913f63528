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

var (
	kustomizationGVR = schema.GroupVersionResource{Group: "kustomize.toolkit.fluxcd.io", Version: "v1", Resource: "kustomizations"}
	applicationGVR   = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}
)

var webDeployment = kubetest.Deployment("web", "nginx:1.0 # written by the manifest kind", 1)

const settingsConfigMap = `apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {greeting: hello}
`

// stuckDeployment is web on no node, with a short progress deadline: its
// rollout fails (ProgressDeadlineExceeded) within seconds, for Flux's health
// check (which fails fast on it) and Argo's health (Degraded).
func stuckDeployment() string {
	d := strings.Replace(webDeployment, "    spec:\n", "    spec:\n      nodeSelector: {no-such-label: \"true\"}\n", 1)
	return strings.Replace(d, "  replicas: 1\n", "  replicas: 1\n  progressDeadlineSeconds: 2\n", 1)
}

// agentFixture: a config repo, and the put that a pipeline makes before
// handing over: the manifest kind writes the image and pushes.
type agentFixture struct {
	t   *testing.T
	env *kubetest.Env
	git *gittest.Server
	ns  string
}

func newAgentFixture(t *testing.T) *agentFixture {
	env := cluster(t)
	git := gittest.New(t)
	git.CreateRepo(t, "config")
	git.Commit(t, "config", "main", map[string]string{"deploy/web.yaml": webDeployment, "deploy/settings.yaml": settingsConfigMap}, "web at 1.0")
	return &agentFixture{t: t, env: env, git: git, ns: env.Namespace(t)}
}

// writeImage runs the manifest kind's put through the binary and returns
// the build dir holding revision (the pushed commit).
func (f *agentFixture) writeImage(tag string) (dir, sha string) {
	f.t.Helper()
	src := map[string]any{"kind": "manifest", "uri": f.git.HTTPURL("config"), "branch": "main"}
	var out rt.Response
	rt.Run(f.t, "out", f.t.TempDir(), map[string]any{"source": src, "params": map[string]any{
		"images": []map[string]any{{"repository": "nginx", "tag": tag}}}}, rt.Env("ship", "1")).OK(f.t, &out)
	return f.revisionDir(out.Version["ref"]), out.Version["ref"]
}

func (f *agentFixture) revisionDir(sha string) string {
	dir := f.t.TempDir()
	require.NoError(f.t, os.WriteFile(filepath.Join(dir, "revision"), []byte(sha+"\n"), 0o644))
	return dir
}

func (f *agentFixture) image() string {
	d, err := f.env.Client().AppsV1().Deployments(f.ns).Get(f.t.Context(), "web", metav1.GetOptions{})
	require.NoError(f.t, err)
	return d.Spec.Template.Spec.Containers[0].Image
}

// seen watches the object from the test's side and reports when done first
// holds: the moment the API server recorded the state out waits for, to
// measure how long after it out returns.
func seen(t *testing.T, ri dynamic.ResourceInterface, name string, done func(*unstructured.Unstructured) bool) <-chan time.Time {
	t.Helper()
	w, err := ri.Watch(t.Context(), metav1.ListOptions{FieldSelector: "metadata.name=" + name})
	require.NoError(t, err)
	at := make(chan time.Time, 1)
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			if u, ok := ev.Object.(*unstructured.Unstructured); ok && done(u) {
				at <- time.Now()
				return
			}
		}
	}()
	return at
}

// reactedWithin logs and bounds (loosely: this is a test, not a benchmark)
// the time from the state being recorded to out returning.
func reactedWithin(t *testing.T, at <-chan time.Time, returned time.Time) {
	t.Helper()
	select {
	case s := <-at:
		t.Logf("status reached the revision → out returned: %s", returned.Sub(s).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("the test's own watch never saw the state out reported")
	}
}

func TestFluxModeWaitsForThatCommit(t *testing.T) {
	f := newAgentFixture(t)
	agenttest.StartFlux(t, f.env)
	dyn, err := dynamic.NewForConfig(f.env.Config())
	require.NoError(t, err)
	agenttest.Apply(t, f.env, f.ns, agenttest.FluxKustomization("web", f.git.HTTPURL("config"), "./deploy", f.ns, 10*time.Second))
	// The pipeline's identity holds only the Role docs/cluster-rbac.md documents.
	sa := f.env.ServiceAccount(t, f.ns, docRole(t, "flux")...)
	src := map[string]any{"kind": "cluster", "mode": "flux", "kubeconfig": string(sa.Kubeconfig), "namespace": f.ns, "kustomization": "web"}
	params := map[string]any{"revision_file": "revision", "timeout": "2m"}

	// A new image: manifest put → cluster put waits for that commit.
	dir, sha := f.writeImage("1.1")
	at := seen(t, dyn.Resource(kustomizationGVR).Namespace(f.ns), "web", func(u *unstructured.Unstructured) bool {
		rev, _, _ := unstructured.NestedString(u.Object, "status", "lastAppliedRevision")
		return rev == "main@sha1:"+sha
	})
	var out rt.Response
	res := rt.Run(t, "out", dir, map[string]any{"source": src, "params": params}, rt.Env("deploy", "1"))
	reactedWithin(t, at, time.Now())
	res.OK(t, &out)
	require.Equal(t, "main@sha1:"+sha, out.Version["revision"])
	require.Equal(t, "nginx:1.1", f.image(), "the Deployment runs the new image when out returns")
	_, err = f.env.Client().CoreV1().ConfigMaps(f.ns).Get(t.Context(), "settings", metav1.GetOptions{})
	require.NoError(t, err, "the ConfigMap of the commit is applied too")
	require.Contains(t, res.Stderr, "reconcile requested")
	t.Logf("flux put:\n%s", res.Stderr)

	var versions []map[string]string
	rt.Run(t, "check", "", map[string]any{"source": src}, nil).OK(t, &versions)
	require.Equal(t, []map[string]string{{"revision": "main@sha1:" + sha}}, versions)

	// get waits for the version and writes the Kustomization's status.
	getDir := t.TempDir()
	rt.Run(t, "in", getDir, map[string]any{"source": src, "version": versions[0]}, nil).OK(t, &out)
	require.Equal(t, "main@sha1:"+sha, out.Version["revision"])
	require.Equal(t, "Kustomization/"+f.ns+"/web", out.Meta1("object"))
	status, err := os.ReadFile(filepath.Join(getDir, "status.json"))
	require.NoError(t, err)
	require.Contains(t, string(status), `"lastAppliedRevision": "main@sha1:`+sha+`"`)

	// A broken commit fails with Flux's reason, long before the timeout.
	broken := f.git.Commit(t, "config", "main", map[string]string{"deploy/bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad}\ndata: {count: [1, 2]}\n"}, "a broken manifest")
	began := time.Now()
	res = rt.Run(t, "out", f.revisionDir(broken), map[string]any{"source": src, "params": params}, nil)
	res.Fails(t, "Kustomization", "failed", "bad")
	require.Less(t, time.Since(began), time.Minute, "judged on the attempt for that revision, not the timeout")
	t.Logf("broken commit:\n%s", res.Stderr)

	// The recovery commit succeeds.
	fixed := f.git.Commit(t, "config", "main", map[string]string{"deploy/bad.yaml": gittest.Deleted}, "remove the broken manifest")
	rt.Run(t, "out", f.revisionDir(fixed), map[string]any{"source": src, "params": params}, nil).OK(t, &out)
	require.Equal(t, "main@sha1:"+fixed, out.Version["revision"])

	// Already applied: returns at once.
	res = rt.Run(t, "out", f.revisionDir(fixed), map[string]any{"source": src, "params": params}, nil)
	res.OK(t, nil)
	require.Contains(t, res.Stderr, "already applied and healthy")

	// A Deployment that cannot be scheduled fails Flux's health check; out
	// fails once the agent's retry of that revision fails too, with Flux's
	// reason, not at the timeout.
	unschedulable := f.git.Commit(t, "config", "main", map[string]string{"deploy/web.yaml": stuckDeployment()}, "web on no node")
	began = time.Now()
	res = rt.Run(t, "out", f.revisionDir(unschedulable), map[string]any{"source": src, "params": params}, nil)
	t.Logf("unschedulable commit (%s):\n%s", time.Since(began).Round(time.Second), res.Stderr)
	res.Fails(t, "Kustomization", "still failing after a retry", "HealthCheckFailed")
	require.Less(t, time.Since(began), time.Minute)
	fixed = f.git.Commit(t, "config", "main", map[string]string{"deploy/web.yaml": webDeployment}, "web schedulable again")
	rt.Run(t, "out", f.revisionDir(fixed), map[string]any{"source": src, "params": params}, nil).OK(t, &out)
	require.Equal(t, "nginx:1.0", f.image())

	// A revision that never arrives: the timeout, saying what it last saw.
	never := "0123456789abcdef0123456789abcdef01234567"
	res = rt.Run(t, "out", f.revisionDir(never), map[string]any{"source": src, "params": map[string]any{"revision_file": "revision", "timeout": "3s"}}, nil)
	res.Fails(t, "gave up waiting for revision "+never, "last seen: Ready=True ReconciliationSucceeded, applied main@sha1:"+fixed)

	// Suspended: an error that says so.
	_, err = dyn.Resource(kustomizationGVR).Namespace(f.ns).Patch(t.Context(), "web", types.MergePatchType, []byte(`{"spec":{"suspend":true}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	_, sha = f.writeImage("1.2")
	rt.Run(t, "out", f.revisionDir(sha), map[string]any{"source": src, "params": params}, nil).Fails(t, "suspended")
}

func TestArgoCDModeWaitsForThatCommit(t *testing.T) {
	f := newAgentFixture(t)
	argo := agenttest.StartArgoCD(t, f.env)
	dyn, err := dynamic.NewForConfig(f.env.Config())
	require.NoError(t, err)
	name := f.ns
	agenttest.Apply(t, f.env, argo.Namespace(), agenttest.ArgoCDApplication(name, f.git.HTTPURL("config"), "deploy", f.ns))
	sa := f.env.ServiceAccount(t, argo.Namespace(), docRole(t, "argocd")...)
	src := map[string]any{"kind": "cluster", "mode": "argocd", "kubeconfig": string(sa.Kubeconfig), "application": name}
	params := map[string]any{"revision_file": "revision", "sync": true, "timeout": "2m"}

	dir, sha := f.writeImage("1.1")
	at := seen(t, dyn.Resource(applicationGVR).Namespace(argo.Namespace()), name, func(u *unstructured.Unstructured) bool {
		rev, _, _ := unstructured.NestedString(u.Object, "status", "sync", "revision")
		health, _, _ := unstructured.NestedString(u.Object, "status", "health", "status")
		return rev == sha && health == "Healthy"
	})
	var out rt.Response
	res := rt.Run(t, "out", dir, map[string]any{"source": src, "params": params}, rt.Env("deploy", "1"))
	reactedWithin(t, at, time.Now())
	res.OK(t, &out)
	require.Equal(t, sha, out.Version["revision"])
	require.Equal(t, "nginx:1.1", f.image())
	t.Logf("argocd put:\n%s", res.Stderr)

	res = rt.Run(t, "out", f.revisionDir(sha), map[string]any{"source": src, "params": params}, nil)
	res.OK(t, nil)
	require.Contains(t, res.Stderr, "already applied and healthy", "does not hang on an app already healthy at that revision")

	var versions []map[string]string
	rt.Run(t, "check", "", map[string]any{"source": src}, nil).OK(t, &versions)
	require.Equal(t, []map[string]string{{"revision": sha}}, versions)

	broken := f.git.Commit(t, "config", "main", map[string]string{"deploy/bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad}\ndata: {count: [1, 2]}\n"}, "a broken manifest")
	res = rt.Run(t, "out", f.revisionDir(broken), map[string]any{"source": src, "params": params}, nil)
	res.Fails(t, "Application", "the agent reports a failure", "ConfigMap")
	require.True(t, strings.Contains(res.Stderr, "Failed") || strings.Contains(res.Stderr, "Error") || strings.Contains(res.Stderr, "Degraded"), res.Stderr)
	t.Logf("broken commit:\n%s", res.Stderr)

	fixed := f.git.Commit(t, "config", "main", map[string]string{"deploy/bad.yaml": gittest.Deleted}, "remove the broken manifest")
	rt.Run(t, "out", f.revisionDir(fixed), map[string]any{"source": src, "params": params}, nil).OK(t, &out)
	require.Equal(t, fixed, out.Version["revision"])

	// get waits for the version and writes the Application's status.
	getDir := t.TempDir()
	rt.Run(t, "in", getDir, map[string]any{"source": src, "version": map[string]string{"revision": fixed}}, nil).OK(t, &out)
	require.Equal(t, fixed, out.Version["revision"])
	status, err := os.ReadFile(filepath.Join(getDir, "status.json"))
	require.NoError(t, err)
	require.Contains(t, string(status), `"revision": "`+fixed+`"`)

	// A rollout that exceeds its progress deadline: Argo says Degraded, and
	// out fails naming the resource and Kubernetes' message.
	degraded := f.git.Commit(t, "config", "main", map[string]string{"deploy/web.yaml": stuckDeployment()}, "web on no node")
	began := time.Now()
	res = rt.Run(t, "out", f.revisionDir(degraded), map[string]any{"source": src, "params": params}, nil)
	t.Logf("degraded commit (%s):\n%s", time.Since(began).Round(time.Second), res.Stderr)
	res.Fails(t, "is Degraded", "Deployment/"+f.ns+"/web: Degraded", "progress deadline")
	require.Less(t, time.Since(began), time.Minute)

	// Its recovery: the Degraded health of the live (previous) state, while
	// OutOfSync at the new commit, is not taken for the new commit's.
	recovered := f.git.Commit(t, "config", "main", map[string]string{"deploy/web.yaml": webDeployment}, "web schedulable again")
	res = rt.Run(t, "out", f.revisionDir(recovered), map[string]any{"source": src, "params": params}, nil)
	res.OK(t, &out)
	require.Equal(t, recovered, out.Version["revision"])
	t.Logf("recovery commit:\n%s", res.Stderr)
}
