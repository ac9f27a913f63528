package cluster_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
	"github.com/gitops-resource/gitops-resource/internal/testenv/kubetest"
	clusterkind "github.com/gitops-resource/gitops-resource/pkg/cluster"
	"github.com/gitops-resource/gitops-resource/pkg/kube"
	"github.com/gitops-resource/gitops-resource/pkg/resource"
)

// The control plane shared by the package's tests (Full mode: pods really
// roll out on a kwok node).
var (
	kubeEnv  *kubetest.Env
	kubeSkip error
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		kubeSkip = errors.New("the control plane is not started under -short")
		os.Exit(m.Run())
	}
	env, err := kubetest.Start(context.Background(), kubetest.Full)
	switch {
	case errors.Is(err, kubetest.ErrNoBinaries) && os.Getenv("CI") != "true":
		kubeSkip = err
	case err != nil:
		fmt.Fprintf(os.Stderr, "kubetest: %v\n", err)
		os.Exit(1)
	}
	kubeEnv = env
	code := m.Run()
	if env != nil {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "kubetest: %v\n", err)
			code = max(code, 1)
		}
	}
	rt.Cleanup()
	os.Exit(code)
}

func cluster(t testing.TB) *kubetest.Env {
	t.Helper()
	if kubeEnv == nil {
		t.Skipf("kubetest: %v (build the binaries with hack/k8s-build.sh)", kubeSkip)
	}
	rt.Binaries(t)
	return kubeEnv
}

func source(env *kubetest.Env, ns string, extra map[string]any) map[string]any {
	s := map[string]any{"kind": "cluster", "kubeconfig": string(env.Kubeconfig()), "namespace": ns}
	for k, v := range extra {
		s[k] = v
	}
	return s
}

// build writes files into a fresh build dir.
func build(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	return dir
}

func deploymentYAML(name, image string, replicas int, extraSpec string) string {
	return kubetest.Deployment(name, image, replicas) + extraSpec
}

const serviceAndConfigMap = `---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data: {greeting: hello}
`

func put(t testing.TB, env *kubetest.Env, ns, dir string, params map[string]any) rt.Result {
	t.Helper()
	return rt.Run(t, "out", dir, map[string]any{"source": source(env, ns, nil), "params": params}, rt.Env("deploy", "7"))
}

func getDeployment(t testing.TB, env *kubetest.Env, ns, name string) *appsv1.Deployment {
	t.Helper()
	d, err := env.Client().AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return d
}

func TestApplyWaitsForRolloutThenCheckAndIn(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	dir := build(t, map[string]string{
		"config/app.yaml":  deploymentYAML("web", "registry.example/web:1", 2, "") + serviceAndConfigMap,
		"config/.git/ref":  "0123456789abcdef0123456789abcdef01234567\n",
		"config/README.md": "not a manifest",
	})
	var out rt.Response
	res := put(t, env, ns, dir, map[string]any{"path": "config", "revision_file": "config/.git/ref"})
	res.OK(t, &out)
	require.Equal(t, "0123456789abcdef0123456789abcdef01234567", out.Version["revision"])
	require.Equal(t, "3", out.Meta1("objects"))
	require.Equal(t, "registry.example/web:1", out.Meta1("images"))
	require.Equal(t, "https://ci.example.com/teams/main/pipelines/app/jobs/deploy/builds/7", out.Meta1("build_url"))
	require.Contains(t, res.Stderr, "Deployment/"+ns+"/web created")
	require.Contains(t, res.Stderr, "Deployment/"+ns+"/web: ")
	require.Regexp(t, "Deployment/"+ns+"/web: (.* → )?2/2 available\n", res.Stderr, "the wait ends on the rollout (at the first look when kwok was quick)")
	require.Contains(t, res.Stderr, "Service/"+ns+"/web: exists")
	res.NoSecrets(t, string(env.Kubeconfig()))

	d := getDeployment(t, env, ns, "web")
	require.Equal(t, int32(2), d.Status.AvailableReplicas, "out returned only after the rollout")
	require.Equal(t, "0123456789abcdef0123456789abcdef01234567", d.Annotations[kube.AnnotationRevision])
	require.Equal(t, "https://ci.example.com/teams/main/pipelines/app/jobs/deploy/builds/7", d.Annotations[kube.AnnotationBuildURL])
	require.Equal(t, "registry.example/web:1", d.Annotations[kube.AnnotationImages])
	require.NotEmpty(t, d.Labels[kube.LabelSet])
	require.Contains(t, d.Annotations[kube.AnnotationLastApplied], "registry.example/web:1")
	for _, mf := range d.ManagedFields {
		if mf.Operation == metav1.ManagedFieldsOperationApply {
			require.Equal(t, kube.FieldManager, mf.Manager)
		}
	}

	// Applying the same set again changes nothing.
	res = put(t, env, ns, dir, map[string]any{"path": "config", "revision_file": "config/.git/ref"})
	res.OK(t, &out)
	require.Contains(t, res.Stderr, "Deployment/"+ns+"/web unchanged")
	require.Equal(t, d.Generation, getDeployment(t, env, ns, "web").Generation)

	src := source(env, ns, map[string]any{"resources": []string{"deployment/web"}})
	var versions []map[string]string
	rt.Run(t, "check", "", map[string]any{"source": src}, nil).OK(t, &versions)
	require.Equal(t, []map[string]string{{"revision": "web=registry.example/web:1"}}, versions)

	getDir := t.TempDir()
	rt.Run(t, "in", getDir, map[string]any{"source": src, "version": versions[0]}, nil).OK(t, &out)
	require.Equal(t, "web=registry.example/web:1", out.Version["revision"])
	require.Equal(t, "0123456789abcdef0123456789abcdef01234567", out.Meta1("revision"))
	var images map[string]map[string]string
	readJSON(t, filepath.Join(getDir, "images.json"), &images)
	require.Equal(t, map[string]map[string]string{"Deployment/" + ns + "/web": {"app": "registry.example/web:1"}}, images)
	var status []map[string]any
	readJSON(t, filepath.Join(getDir, "status.json"), &status)
	require.Len(t, status, 1)
	require.Equal(t, "ready", status[0]["state"])
	require.Equal(t, "2/2 available", status[0]["message"])

	// The get Concourse makes after the put asks for the put's version: the
	// revision the objects carry, not news that the cluster moved on.
	res = rt.Run(t, "in", t.TempDir(), map[string]any{"source": src, "version": map[string]string{"revision": "0123456789abcdef0123456789abcdef01234567"}}, nil)
	res.OK(t, nil)
	require.NotContains(t, res.Stderr, "moved on")
	res = rt.Run(t, "in", t.TempDir(), map[string]any{"source": src, "version": map[string]string{"revision": "web=registry.example/web:0"}}, nil)
	res.OK(t, nil)
	require.Contains(t, res.Stderr, `the cluster has moved on since version "web=registry.example/web:0"`)

	// restart rolls the pods the kubectl way, and a later apply keeps it.
	res = put(t, env, ns, dir, map[string]any{"path": "config", "restart": []string{"deployment/web"}})
	res.OK(t, &out)
	require.Equal(t, "Deployment/"+ns+"/web", out.Meta1("restarted"))
	d = getDeployment(t, env, ns, "web")
	at := d.Spec.Template.Annotations[kube.AnnotationRestartedAt]
	require.NotEmpty(t, at)
	require.Equal(t, d.Generation, d.Status.ObservedGeneration)
	require.Equal(t, int32(2), d.Status.UpdatedReplicas)
	put(t, env, ns, dir, map[string]any{"path": "config"}).OK(t, nil)
	require.Equal(t, at, getDeployment(t, env, ns, "web").Spec.Template.Annotations[kube.AnnotationRestartedAt], "the next apply does not undo the restart")
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, v), string(data))
}

func configMap(name string) string {
	return fmt.Sprintf("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata: {k: v}\n", name)
}

func TestPruneRemovesOnlyWhatItAppliedBefore(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	cms := env.Client().CoreV1().ConfigMaps(ns)
	_, err := cms.Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "unrelated"}}, metav1.CreateOptions{})
	require.NoError(t, err)

	put(t, env, ns, build(t, map[string]string{"m/all.yaml": configMap("keep") + configMap("drop") + configMap("adopted")}), map[string]any{"path": "m"}).OK(t, nil)
	// Someone takes "adopted" over: without the set label it is no longer ours.
	adopted, err := cms.Get(t.Context(), "adopted", metav1.GetOptions{})
	require.NoError(t, err)
	delete(adopted.Labels, kube.LabelSet)
	_, err = cms.Update(t.Context(), adopted, metav1.UpdateOptions{})
	require.NoError(t, err)

	var out rt.Response
	res := put(t, env, ns, build(t, map[string]string{"m/all.yaml": configMap("keep")}), map[string]any{"path": "m", "prune": true})
	res.OK(t, &out)
	require.Contains(t, res.Stderr, "ConfigMap/"+ns+"/drop pruned")
	require.Contains(t, res.Stderr, "ConfigMap/"+ns+"/adopted no longer carries this set's label: left alone")
	require.Equal(t, "ConfigMap/"+ns+"/drop", out.Meta1("pruned"))
	for name, exists := range map[string]bool{"keep": true, "drop": false, "adopted": true, "unrelated": true} {
		_, err := cms.Get(t.Context(), name, metav1.GetOptions{})
		if exists {
			require.NoError(t, err, name)
		} else {
			require.True(t, apierrors.IsNotFound(err), "%s: %v", name, err)
		}
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	put(t, env, ns, build(t, map[string]string{"app.yaml": deploymentYAML("web", "registry.example/web:1", 1, "")}), map[string]any{"path": "app.yaml"}).OK(t, nil)
	before := getDeployment(t, env, ns, "web")

	var out rt.Response
	dir := build(t, map[string]string{"app.yaml": deploymentYAML("web", "registry.example/web:2", 1, "") + configMap("new")})
	res := put(t, env, ns, dir, map[string]any{"path": "app.yaml", "dry_run": true})
	res.OK(t, &out)
	require.Equal(t, "true", out.Meta1("dry_run"))
	require.Contains(t, res.Stderr, "Deployment/"+ns+"/web would be configured")
	require.Contains(t, res.Stderr, "spec.template.spec.containers[0].image: registry.example/web:1 → registry.example/web:2")
	require.Contains(t, res.Stderr, "ConfigMap/"+ns+"/new would be created")
	after := getDeployment(t, env, ns, "web")
	require.Equal(t, before.ResourceVersion, after.ResourceVersion)
	_, err := env.Client().CoreV1().ConfigMaps(ns).Get(t.Context(), "new", metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err))
}

// stuck makes a rollout that cannot progress: no node matches, and the
// controller gives up after a few seconds.
const stuck = `      nodeSelector: {kubetest.example/no-such-node: "true"}
  progressDeadlineSeconds: 3
`

func TestFailsFastOnProgressDeadline(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	dir := build(t, map[string]string{"app.yaml": deploymentYAML("web", "registry.example/web:1", 1, stuck)})
	began := time.Now()
	res := put(t, env, ns, dir, map[string]any{"path": "app.yaml", "timeout": "3m"})
	took := time.Since(began)
	res.Fails(t, "Deployment/"+ns+"/web failed: Progressing=False ProgressDeadlineExceeded",
		"conditions:", "pods:", "PodScheduled=False Unschedulable", "events:", "FailedScheduling")
	require.Less(t, took, time.Minute, "fails fast, long before the 3m timeout")
	t.Logf("failed after %s", took)
}

func TestFailsFastOnImagePullError(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	// kwok does not pull images: the pods stay unscheduled (no node matches)
	// and the test writes the kubelet's ErrImagePull status itself.
	dir := build(t, map[string]string{"app.yaml": deploymentYAML("web", "registry.example/missing:1", 1,
		"      nodeSelector: {kubetest.example/no-such-node: \"true\"}\n")})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			pods, err := env.Client().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err == nil {
				for _, p := range pods.Items {
					if len(p.Status.ContainerStatuses) > 0 {
						continue
					}
					p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Image: "registry.example/missing:1",
						State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: `Back-off pulling image "registry.example/missing:1"`}}}}
					_, _ = env.Client().CoreV1().Pods(ns).UpdateStatus(ctx, &p, metav1.UpdateOptions{})
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	began := time.Now()
	res := put(t, env, ns, dir, map[string]any{"path": "app.yaml", "timeout": "3m"})
	res.Fails(t, "Deployment/"+ns+"/web failed: new pod web-", "container app: ImagePullBackOff: Back-off pulling image")
	require.Less(t, time.Since(began), 30*time.Second)
}

func TestTimeoutSaysWhatItWaitedFor(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	dir := build(t, map[string]string{"app.yaml": deploymentYAML("web", "registry.example/web:1", 1,
		"      nodeSelector: {kubetest.example/no-such-node: \"true\"}\n")})
	res := put(t, env, ns, dir, map[string]any{"path": "app.yaml", "timeout": "4s"})
	res.Fails(t, "timed out after 4s still waiting for Deployment/"+ns+"/web (1/1 updated, 0/1 available)", "PodScheduled=False Unschedulable")
}

func TestRollbackOnFailureRestoresThePreviousImage(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	put(t, env, ns, build(t, map[string]string{"app.yaml": deploymentYAML("web", "registry.example/web:1", 2, ""), "ref": "aaaa1111"}),
		map[string]any{"path": "app.yaml", "revision_file": "ref"}).OK(t, nil)

	dir := build(t, map[string]string{"app.yaml": deploymentYAML("web", "registry.example/web:2", 2, stuck), "ref": "bbbb2222"})
	res := put(t, env, ns, dir, map[string]any{"path": "app.yaml", "revision_file": "ref", "rollback_on_failure": true, "timeout": "2m"})
	res.Fails(t, "ProgressDeadlineExceeded", "rolled back Deployment/"+ns+"/web to registry.example/web:1 (revision aaaa1111): it is ready again")
	d := getDeployment(t, env, ns, "web")
	require.Equal(t, "registry.example/web:1", d.Spec.Template.Spec.Containers[0].Image)
	require.Empty(t, d.Spec.Template.Spec.NodeSelector)
	require.Equal(t, "aaaa1111", d.Annotations[kube.AnnotationRevision])
	require.Equal(t, int32(2), d.Status.AvailableReplicas)
}

func TestRBACDenialIsClearAndAppliesNothing(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	sa := env.ServiceAccount(t, ns,
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"*"}},
		rbacv1.PolicyRule{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "list", "watch"}})
	src := map[string]any{"kind": "cluster", "server": env.Host(), "token": sa.Token,
		"certificate_authority": string(env.CAData()), "namespace": ns}
	dir := build(t, map[string]string{"app.yaml": configMap("first") + "---\n" + deploymentYAML("web", "registry.example/web:1", 1, "")})
	res := rt.Run(t, "out", dir, map[string]any{"source": src, "params": map[string]any{"path": "app.yaml"}}, nil)
	res.Fails(t, "nothing applied", "Deployment/"+ns+"/web", "forbidden (403): the credentials may not patch deployments.apps in namespace "+ns)
	res.NoSecrets(t, sa.Token)
	_, err := env.Client().CoreV1().ConfigMaps(ns).Get(t.Context(), "first", metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "the allowed ConfigMap was not applied either: %v", err)
}

func TestConnectionErrorsNameHostAndWhatToCheck(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	dir := build(t, map[string]string{"cm.yaml": configMap("x")})
	params := map[string]any{"path": "cm.yaml"}
	cases := []struct {
		name   string
		source map[string]any
		want   []string
		secret string
	}{
		{"unreachable", map[string]any{"kind": "cluster", "server": "https://127.0.0.1:1", "token": "tok-unreachable-0123456789", "insecure_skip_tls_verify": true},
			[]string{"cannot reach the API server https://127.0.0.1:1", "check source.server"}, "tok-unreachable-0123456789"},
		{"bad token", map[string]any{"kind": "cluster", "server": env.Host(), "token": "not-a-valid-token-0123456789", "certificate_authority": string(env.CAData()), "namespace": ns},
			[]string{"401 Unauthorized", "check source.token/kubeconfig"}, "not-a-valid-token-0123456789"},
		{"wrong CA", map[string]any{"kind": "cluster", "server": env.Host(), "token": "some-token-0123456789abcdef", "namespace": ns},
			[]string{"TLS with " + env.Host() + " failed", "check source.certificate_authority"}, "some-token-0123456789abcdef"},
		{"bad kubeconfig", map[string]any{"kind": "cluster", "kubeconfig": "apiVersion: v1\nusers:\n- name: admin\n  user: {token: super-secret-kubeconfig-token}\n  clusters: [oops: {"},
			[]string{"source.kubeconfig is not a valid kubeconfig"}, "super-secret-kubeconfig-token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := rt.Run(t, "out", dir, map[string]any{"source": tc.source, "params": params}, nil)
			res.Fails(t, tc.want...)
			res.NoSecrets(t, tc.secret)
			require.NotContains(t, res.Stderr, "Unhandled Error", "client-go's klog output bypasses the redactor: it must be silenced")
			require.NotContains(t, res.Stderr, "clusters: [oops", "the kubeconfig's content is not echoed")
		})
	}
}

func TestInvalidObjectsAndUnknownKindsApplyNothing(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	dir := build(t, map[string]string{
		"a.yaml": configMap("first") + "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: broken}\nspec: {replicas: 1, template: {spec: {containers: []}}}\n",
		"b.yaml": "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n",
	})
	res := put(t, env, ns, dir, map[string]any{"path": "a.yaml"})
	res.Fails(t, "nothing applied", "Deployment/"+ns+"/broken", "spec.selector: Required value", "fix the manifest")
	res = put(t, env, ns, dir, map[string]any{"path": "."})
	res.Fails(t, "nothing applied", "kind Widget in apiVersion example.com/v1", "is its CRD installed")
	_, err := env.Client().CoreV1().ConfigMaps(ns).Get(t.Context(), "first", metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err))
}

const widgetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: %[1]s.%[2]s}
spec:
  group: %[2]s
  scope: Namespaced
  names: {plural: %[1]s, singular: %[3]s, kind: %[4]s}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
`

func TestCRDsAndNamespacesFirstThenTheRest(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	newNS := ns + "-extra"
	group := strings.ReplaceAll(ns, "-", "") + ".example.com"
	t.Cleanup(func() {
		_ = env.Client().CoreV1().Namespaces().Delete(context.Background(), newNS, metav1.DeleteOptions{})
	})
	dir := build(t, map[string]string{"all.yaml": fmt.Sprintf(`apiVersion: %[1]s/v1
kind: Gadget
metadata: {name: g1, namespace: %[2]s}
spec: {size: 3}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: in-new-namespace, namespace: %[2]s}
---
apiVersion: v1
kind: Namespace
metadata: {name: %[2]s}
---
`, group, newNS) + fmt.Sprintf(widgetCRD, "gadgets", group, "gadget", "Gadget")})
	res := put(t, env, ns, dir, map[string]any{"path": "all.yaml"})
	res.OK(t, nil)
	require.Less(t, strings.Index(res.Stderr, "CustomResourceDefinition/gadgets."+group+" created"), strings.Index(res.Stderr, "Gadget/"+newNS+"/g1 created"), res.Stderr)
	_, err := env.Client().CoreV1().ConfigMaps(newNS).Get(t.Context(), "in-new-namespace", metav1.GetOptions{})
	require.NoError(t, err)
}

func TestKustomizeDir(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	dir := build(t, map[string]string{
		"overlay/kustomization.yaml": "resources: [../base]\nnamePrefix: prod-\nimages:\n- {name: registry.example/web, newTag: \"2\"}\n",
		"base/kustomization.yaml":    "resources: [app.yaml]\n",
		"base/app.yaml":              deploymentYAML("web", "registry.example/web:1", 1, "") + serviceAndConfigMap,
	})
	var out rt.Response
	put(t, env, ns, dir, map[string]any{"path": "overlay"}).OK(t, &out)
	require.Equal(t, "registry.example/web:2", out.Meta1("images"))
	d := getDeployment(t, env, ns, "prod-web")
	require.Equal(t, "registry.example/web:2", d.Spec.Template.Spec.Containers[0].Image)
	require.Equal(t, int32(1), d.Status.AvailableReplicas)
}

func TestVerifyImages(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	const digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	const other = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	for _, tc := range []struct {
		name, runs string
		ok         bool
	}{{"match", digest, true}, {"mismatch", other, false}} {
		t.Run(tc.name, func(t *testing.T) {
			name := "web-" + tc.name
			// kwok reports no imageID: play the kubelet, once a pod runs.
			env.ReportImageIDs(t, ns, func(p *corev1.Pod, _ corev1.ContainerStatus) string {
				if p.Labels["app"] != name {
					return ""
				}
				return "registry.example/web@" + tc.runs
			})
			dir := build(t, map[string]string{"app.yaml": deploymentYAML(name, "registry.example/web@"+digest, 1, "")})
			res := put(t, env, ns, dir, map[string]any{"path": "app.yaml", "verify_images": true, "timeout": "1m"})
			if tc.ok {
				res.OK(t, nil)
				require.Contains(t, res.Stderr, "image digests verified")
			} else {
				res.Fails(t, "container app runs "+other+", not the applied "+digest)
			}
		})
	}
}

func TestStatefulSetAndJobFromTarball(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	manifests := `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 2
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: registry.example/db:1}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: registry.example/migrate:1}]
`
	dir := t.TempDir()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "release/all.yaml", Mode: 0o644, Size: int64(len(manifests)), Typeflag: tar.TypeReg}))
	_, err := tw.Write([]byte(manifests))
	require.NoError(t, err)
	require.NoError(t, tw.Close())
	require.NoError(t, zw.Close())
	require.NoError(t, os.WriteFile(filepath.Join(dir, "release.tgz"), buf.Bytes(), 0o644))

	res := put(t, env, ns, dir, map[string]any{"path": "release.tgz", "timeout": "1m"})
	res.OK(t, nil)
	require.Regexp(t, "StatefulSet/"+ns+"/db: (.* → )?2/2 ready\n", res.Stderr, "the wait ends on the rollout (at the first look when kwok was quick)")
	require.Regexp(t, "Job/"+ns+"/migrate: (.* → )?complete \\(1 succeeded\\)\n", res.Stderr)
	sts, err := env.Client().AppsV1().StatefulSets(ns).Get(t.Context(), "db", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, int32(2), sts.Status.ReadyReplicas)
}

func TestWaitingNeedsWatchPermission(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	sa := env.ServiceAccount(t, ns, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "patch"}})
	src := map[string]any{"kind": "cluster", "kubeconfig": string(sa.Kubeconfig)}
	dir := build(t, map[string]string{"cm.yaml": configMap("a")})
	res := rt.Run(t, "out", dir, map[string]any{"source": src, "params": map[string]any{"path": "cm.yaml"}}, nil)
	res.Fails(t, "nothing applied", "forbidden (403): the credentials may not create configmaps in namespace "+ns)

	sa = env.ServiceAccount(t, ns, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "patch", "create"}})
	src = map[string]any{"kind": "cluster", "kubeconfig": string(sa.Kubeconfig)}
	res = rt.Run(t, "out", dir, map[string]any{"source": src, "params": map[string]any{"path": "cm.yaml"}}, nil)
	res.Fails(t, "ConfigMap/"+ns+"/a created", "watch ConfigMap/"+ns+"/a", "forbidden (403): the credentials may not list configmaps in namespace "+ns, "it needs get, list and watch")
	res.NoSecrets(t, sa.Token)
	res = rt.Run(t, "out", dir, map[string]any{"source": src, "params": map[string]any{"path": "cm.yaml", "wait": false}}, nil)
	res.OK(t, nil)

	// Pods and ReplicaSets only sharpen the wait: without them it still works.
	sa = env.ServiceAccount(t, ns,
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "patch", "create"}},
		rbacv1.PolicyRule{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "patch", "create", "list", "watch"}})
	src = map[string]any{"kind": "cluster", "kubeconfig": string(sa.Kubeconfig)}
	dir = build(t, map[string]string{"app.yaml": deploymentYAML("web", "registry.example/web:1", 1, "")})
	res = rt.Run(t, "out", dir, map[string]any{"source": src, "params": map[string]any{"path": "app.yaml"}}, nil)
	res.OK(t, nil)
	require.Regexp(t, "warning: cannot watch (pods|replicasets.apps) in namespace "+ns+" \\(Forbidden\\): waiting on the workloads. status only", res.Stderr)
	require.Regexp(t, "Deployment/"+ns+"/web: (.* → )?1/1 available\n", res.Stderr)
}

// TestOutInProcess runs the verb in this process (go test -race covers the
// waiting machinery this way) with a redacted log.
func TestOutInProcess(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	dir := build(t, map[string]string{"app.yaml": deploymentYAML("web", "registry.example/web:1", 3, "") + serviceAndConfigMap})
	req, err := json.Marshal(map[string]any{"source": source(env, ns, nil), "params": map[string]any{"path": "app.yaml"}})
	require.NoError(t, err)
	parsed, err := resource.ParseRequest(req)
	require.NoError(t, err)
	secrets := &resource.Redactor{}
	var log bytes.Buffer
	w := secrets.Writer(&log)
	resp, err := clusterkind.Out(t.Context(), resource.Input{Request: parsed, Dir: dir, Log: w, Secrets: secrets, Env: resource.EnvFrom(func(string) string { return "" })})
	require.NoError(t, w.Close())
	require.NoError(t, err, log.String())
	require.Equal(t, clusterkind.Version{Revision: resp.Version.(clusterkind.Version).Revision}, resp.Version)
	require.Regexp(t, "Deployment/"+ns+"/web: (.* → )?3/3 available\n", log.String())
}
