package agenttest_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/gitops-resource/gitops-resource/internal/gittest"
	"github.com/gitops-resource/gitops-resource/internal/testenv/agenttest"
	"github.com/gitops-resource/gitops-resource/internal/testenv/kubetest"
)

var kube kubetest.Suite

func TestMain(m *testing.M) {
	kube.Main(m, kubetest.Full, kubetest.WithLog(os.Stderr))
}

var (
	gitRepositoryGVR = schema.GroupVersionResource{Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "gitrepositories"}
	kustomizationGVR = schema.GroupVersionResource{Group: "kustomize.toolkit.fluxcd.io", Version: "v1", Resource: "kustomizations"}
	applicationGVR   = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}
)

// appFiles is the repo content: plain manifests under deploy/ (no
// kustomization.yaml, which would make Argo CD want a kustomize binary).
func appFiles(greeting, image string) map[string]string {
	return map[string]string{
		"deploy/configmap.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: greeting
data:
  greeting: ` + greeting + "\n",
		"deploy/deployment.yaml": kubetest.Deployment("web", image, 2),
	}
}

// eventually polls cond every 100ms until it holds; on timeout the test
// fails with the last state cond described. It returns how long it took.
func eventually(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, string, error)) time.Duration {
	t.Helper()
	began := time.Now()
	var state string
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ok, s, err := cond(ctx)
		state = s
		return ok, err
	})
	if err != nil {
		t.Fatalf("%s: %v; last state: %s", what, err, state)
	}
	return time.Since(began)
}

func decode(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatalf("decode %s: %v", doc, err)
	}
	return &unstructured.Unstructured{Object: m}
}

// condition returns the status and message of condition typ in obj.
func condition(obj *unstructured.Unstructured, typ string) (status, message string) {
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		c, _ := c.(map[string]any)
		if c["type"] == typ {
			s, _ := c["status"].(string)
			m, _ := c["message"].(string)
			return s, m
		}
	}
	return "", ""
}

// applied waits until the ConfigMap holds greeting and the Deployment web
// runs image, rolled out.
func applied(t *testing.T, env *kubetest.Env, ns, greeting, image string) {
	t.Helper()
	eventually(t, 30*time.Second, "ConfigMap and Deployment applied", func(ctx context.Context) (bool, string, error) {
		cm, err := env.Client().CoreV1().ConfigMaps(ns).Get(ctx, "greeting", metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		d, err := env.Client().AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		ok, state := rolledOut(d)
		state = fmt.Sprintf("greeting %q, image %s, %s", cm.Data["greeting"], d.Spec.Template.Spec.Containers[0].Image, state)
		return ok && cm.Data["greeting"] == greeting && d.Spec.Template.Spec.Containers[0].Image == image, state, nil
	})
}

func rolledOut(d *appsv1.Deployment) (bool, string) {
	s := d.Status
	state := fmt.Sprintf("generation %d observed %d, %d/%d updated, %d available",
		d.Generation, s.ObservedGeneration, s.UpdatedReplicas, *d.Spec.Replicas, s.AvailableReplicas)
	return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == *d.Spec.Replicas &&
		s.Replicas == *d.Spec.Replicas && s.AvailableReplicas == *d.Spec.Replicas, state
}

func TestFluxAppliesPushedCommits(t *testing.T) {
	env := kube.Env(t)
	flux := agenttest.StartFlux(t, env, agenttest.WithLog(os.Stderr))
	onlyLoopback(t, flux)
	ns := env.Namespace(t)
	dyn, err := dynamic.NewForConfig(env.Config())
	if err != nil {
		t.Fatal(err)
	}
	git := gittest.New(t)
	git.CreateRepo(t, "app")
	sha := git.Commit(t, "app", "main", appFiles("hello", "nginx:1.0"), "first")

	repos := dyn.Resource(gitRepositoryGVR).Namespace(ns)
	kustomizations := dyn.Resource(kustomizationGVR).Namespace(ns)
	if _, err := repos.Create(t.Context(), decode(t, `
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: app}
spec:
  url: `+git.HTTPURL("app")+`
  interval: 1h
  ref: {branch: main}
`), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kustomizations.Create(t.Context(), decode(t, `
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: app}
spec:
  interval: 1h
  sourceRef: {kind: GitRepository, name: app}
  path: ./deploy
  prune: true
  wait: true
  timeout: 1m
  targetNamespace: `+ns+`
`), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The Flux objects carry finalizers: remove them while the controllers run.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = kustomizations.Delete(ctx, "app", metav1.DeleteOptions{})
		_ = repos.Delete(ctx, "app", metav1.DeleteOptions{})
		_ = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			_, err := repos.Get(ctx, "app", metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
	})

	appliedRevision := func(sha string) time.Duration {
		t.Helper()
		want := "main@sha1:" + sha
		return eventually(t, time.Minute, "Kustomization applies "+want, func(ctx context.Context) (bool, string, error) {
			k, err := kustomizations.Get(ctx, "app", metav1.GetOptions{})
			if err != nil {
				return false, "", err
			}
			rev, _, _ := unstructured.NestedString(k.Object, "status", "lastAppliedRevision")
			observed, _, _ := unstructured.NestedInt64(k.Object, "status", "observedGeneration")
			ready, msg := condition(k, "Ready")
			return rev == want && ready == "True" && observed == k.GetGeneration(),
				fmt.Sprintf("lastAppliedRevision %q, Ready=%s (%s)", rev, ready, msg), nil
		})
	}
	took := appliedRevision(sha)
	applied(t, env, ns, "hello", "nginx:1.0")
	t.Logf("first commit applied and healthy %s after the objects were created", took.Round(time.Millisecond))

	began := time.Now()
	sha2 := git.Commit(t, "app", "main", appFiles("hello again", "nginx:1.1"), "second")
	stamp := fmt.Sprintf(`{"metadata":{"annotations":{"reconcile.fluxcd.io/requestedAt":%q}}}`, time.Now().Format(time.RFC3339Nano))
	if _, err := repos.Patch(t.Context(), "app", types.MergePatchType, []byte(stamp), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	appliedRevision(sha2)
	applied(t, env, ns, "hello again", "nginx:1.1")
	t.Logf("new commit → applied and healthy in %s; flux RSS %d MiB", time.Since(began).Round(time.Millisecond), flux.RSS()>>20)
}

func TestArgoCDSyncsPushedCommits(t *testing.T) {
	env := kube.Env(t)
	argo := agenttest.StartArgoCD(t, env, agenttest.WithLog(os.Stderr))
	onlyLoopback(t, argo)
	ns := env.Namespace(t)
	dyn, err := dynamic.NewForConfig(env.Config())
	if err != nil {
		t.Fatal(err)
	}
	git := gittest.New(t)
	git.CreateRepo(t, "app")
	sha := git.Commit(t, "app", "main", appFiles("hello", "nginx:1.0"), "first")

	apps := dyn.Resource(applicationGVR).Namespace(argo.Namespace())
	name := ns // unique per test, and Applications live in the argocd namespace
	if _, err := apps.Create(t.Context(), decode(t, `
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: `+name+`}
spec:
  project: default
  source:
    repoURL: `+git.HTTPURL("app")+`
    path: deploy
    targetRevision: main
  destination:
    server: https://kubernetes.default.svc
    namespace: `+ns+`
operation:
  initiatedBy: {username: agenttest}
  sync: {}
`), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = apps.Delete(ctx, name, metav1.DeleteOptions{})
	})

	synced := func(sha string) time.Duration {
		t.Helper()
		return eventually(t, time.Minute, "Application synced and healthy at "+sha, func(ctx context.Context) (bool, string, error) {
			app, err := apps.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, "", err
			}
			rev, _, _ := unstructured.NestedString(app.Object, "status", "sync", "revision")
			sync, _, _ := unstructured.NestedString(app.Object, "status", "sync", "status")
			health, _, _ := unstructured.NestedString(app.Object, "status", "health", "status")
			phase, _, _ := unstructured.NestedString(app.Object, "status", "operationState", "phase")
			opRev, _, _ := unstructured.NestedString(app.Object, "status", "operationState", "syncResult", "revision")
			msg, _, _ := unstructured.NestedString(app.Object, "status", "operationState", "message")
			_, running := app.Object["operation"]
			return rev == sha && opRev == sha && sync == "Synced" && health == "Healthy" && phase == "Succeeded" && !running,
				fmt.Sprintf("sync %s at %.7s, health %s, operation %s at %.7s (%s), operation pending %v", sync, rev, health, phase, opRev, msg, running), nil
		})
	}
	took := synced(sha)
	applied(t, env, ns, "hello", "nginx:1.0")
	t.Logf("first commit synced and healthy %s after the Application was created", took.Round(time.Millisecond))

	began := time.Now()
	sha2 := git.Commit(t, "app", "main", appFiles("hello again", "nginx:1.1"), "second")
	patch := `{"metadata":{"annotations":{"argocd.argoproj.io/refresh":"normal"}},` +
		`"operation":{"initiatedBy":{"username":"agenttest"},"sync":{"revision":"` + sha2 + `"}}}`
	if _, err := apps.Patch(t.Context(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	synced(sha2)
	applied(t, env, ns, "hello again", "nginx:1.1")
	t.Logf("new commit → synced and healthy in %s; argocd RSS %d MiB (redis, repo-server, controller)", time.Since(began).Round(time.Millisecond), argo.RSS()>>20)
}

// onlyLoopback fails t when one of the agent's processes listens anywhere
// but 127.0.0.1: a test machine's servers are not for its network.
func onlyLoopback(t *testing.T, agent interface{ Listeners() ([]string, error) }) {
	t.Helper()
	ls, err := agent.Listeners()
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) == 0 {
		t.Fatal("no listeners found: the check would prove nothing")
	}
	for _, l := range ls {
		if _, addr, _ := strings.Cut(l, " "); !strings.HasPrefix(addr, "127.0.0.1:") {
			t.Errorf("%s: not on 127.0.0.1", l)
		}
	}
	t.Logf("listeners: %s", strings.Join(ls, ", "))
}
