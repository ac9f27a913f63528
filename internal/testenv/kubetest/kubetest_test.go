package kubetest_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/gitops-resource/gitops-resource/internal/testenv/kubetest"
)

var kube kubetest.Suite

func TestMain(m *testing.M) {
	kube.Main(m, kubetest.Full, kubetest.WithLog(os.Stderr))
}

// eventually polls cond every 100ms until it holds; on timeout the test
// fails with the last state cond described.
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

func deployment(name string, replicas int32, image string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
}

// rolledOut is kubectl rollout status's rule: the controller saw the latest
// spec and every replica is updated and available, no old ones left.
func rolledOut(d *appsv1.Deployment) (bool, string) {
	s := d.Status
	state := fmt.Sprintf("generation %d observed %d, %d/%d updated, %d total, %d available",
		d.Generation, s.ObservedGeneration, s.UpdatedReplicas, *d.Spec.Replicas, s.Replicas, s.AvailableReplicas)
	return s.ObservedGeneration >= d.Generation &&
		s.UpdatedReplicas == *d.Spec.Replicas &&
		s.Replicas == *d.Spec.Replicas &&
		s.AvailableReplicas == *d.Spec.Replicas, state
}

func TestDeploymentRollsOut(t *testing.T) {
	env := kube.Env(t)
	ns := env.Namespace(t)
	deployments := env.Client().AppsV1().Deployments(ns)

	if _, err := deployments.Create(t.Context(), deployment("web", 3, "registry.example/web:1"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRolledOut := func(what string) time.Duration {
		return eventually(t, time.Minute, what, func(ctx context.Context) (bool, string, error) {
			d, err := deployments.Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return false, "", err
			}
			ok, state := rolledOut(d)
			return ok, state, nil
		})
	}
	t.Logf("first rollout took %s", waitRolledOut("first rollout"))

	d, err := deployments.Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Spec.Template.Spec.Containers[0].Image = "registry.example/web:2"
	if _, err := deployments.Update(t.Context(), d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("image update rolled out in %s", waitRolledOut("rollout of the new image"))

	pods, err := env.Client().CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		if got := p.Spec.Containers[0].Image; got != "registry.example/web:2" {
			t.Errorf("pod %s runs %s, want registry.example/web:2", p.Name, got)
		}
		if p.Spec.NodeName != env.NodeName() || p.Status.Phase != corev1.PodRunning {
			t.Errorf("pod %s is %s on %q, want Running on %s", p.Name, p.Status.Phase, p.Spec.NodeName, env.NodeName())
		}
	}
}

func TestDeploymentProgressDeadlineExceeded(t *testing.T) {
	env := kube.Env(t)
	ns := env.Namespace(t)
	deployments := env.Client().AppsV1().Deployments(ns)

	d := deployment("stuck", 1, "registry.example/stuck:1")
	deadline := int32(5)
	d.Spec.ProgressDeadlineSeconds = &deadline
	d.Spec.Template.Spec.NodeSelector = map[string]string{"kubetest.example/no-such-node": "true"}
	if _, err := deployments.Create(t.Context(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, time.Minute, "ProgressDeadlineExceeded", func(ctx context.Context) (bool, string, error) {
		d, err := deployments.Get(ctx, "stuck", metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		for _, c := range d.Status.Conditions {
			if c.Type == appsv1.DeploymentProgressing {
				return c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded",
					fmt.Sprintf("Progressing=%s reason %s", c.Status, c.Reason), nil
			}
		}
		return false, "no Progressing condition", nil
	})
	t.Logf("ProgressDeadlineExceeded after %s", took)

	eventually(t, 30*time.Second, "pod reported unschedulable", func(ctx context.Context) (bool, string, error) {
		pods, err := env.Client().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=stuck"})
		if err != nil || len(pods.Items) == 0 {
			return false, "no pods", err
		}
		for _, c := range pods.Items[0].Status.Conditions {
			if c.Type == corev1.PodScheduled {
				return c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable,
					fmt.Sprintf("PodScheduled=%s reason %s", c.Status, c.Reason), nil
			}
		}
		return false, "pod has no PodScheduled condition", nil
	})
}

func TestCustomResourceStatus(t *testing.T) {
	env := kube.Env(t)
	ns := env.Namespace(t)
	dyn, err := dynamic.NewForConfig(env.Config())
	if err != nil {
		t.Fatal(err)
	}
	group := ns + ".kubetest.example.com"
	crds := dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   map[string]any{"name": "widgets." + group},
		"spec": map[string]any{
			"group": group,
			"scope": "Namespaced",
			"names": map[string]any{"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true,
				"subresources": map[string]any{"status": map[string]any{}},
				"schema": map[string]any{"openAPIV3Schema": map[string]any{
					"type": "object",
					"properties": map[string]any{
						"spec": map[string]any{"type": "object", "properties": map[string]any{"size": map[string]any{"type": "integer"}}},
						"status": map[string]any{"type": "object", "properties": map[string]any{
							"phase":              map[string]any{"type": "string"},
							"observedGeneration": map[string]any{"type": "integer"},
						}},
					},
				}},
			}},
		},
	}}
	if _, err := crds.Create(t.Context(), crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := crds.Delete(ctx, "widgets."+group, metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete CRD: %v", err)
		}
	})
	took := eventually(t, 30*time.Second, "CRD Established", func(ctx context.Context) (bool, string, error) {
		got, err := crds.Get(ctx, "widgets."+group, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
		for _, c := range conds {
			c, _ := c.(map[string]any)
			if c["type"] == "Established" {
				return c["status"] == "True", fmt.Sprintf("Established=%v", c["status"]), nil
			}
		}
		return false, "no Established condition", nil
	})
	t.Logf("CRD established after %s", took)

	widgets := dyn.Resource(schema.GroupVersionResource{Group: group, Version: "v1", Resource: "widgets"}).Namespace(ns)
	w, err := widgets.Create(t.Context(), &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": group + "/v1",
		"kind":       "Widget",
		"metadata":   map[string]any{"name": "w"},
		"spec":       map[string]any{"size": int64(1)},
		"status":     map[string]any{"phase": "ignored on create"},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, found, _ := unstructured.NestedString(w.Object, "status", "phase"); found {
		t.Errorf("status was written through the main resource on create: %v", w.Object["status"])
	}

	if err := unstructured.SetNestedMap(w.Object, map[string]any{"phase": "Ready", "observedGeneration": w.GetGeneration()}, "status"); err != nil {
		t.Fatal(err)
	}
	w, err = widgets.UpdateStatus(t.Context(), w, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update status: %v", err)
	}
	generation := w.GetGeneration()

	// A spec change bumps the generation and leaves status alone.
	if err := unstructured.SetNestedField(w.Object, int64(2), "spec", "size"); err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedField(w.Object, "overwritten", "status", "phase"); err != nil {
		t.Fatal(err)
	}
	if w, err = widgets.Update(t.Context(), w, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	phase, _, _ := unstructured.NestedString(w.Object, "status", "phase")
	observed, _, _ := unstructured.NestedInt64(w.Object, "status", "observedGeneration")
	if phase != "Ready" || observed != generation || w.GetGeneration() != generation+1 {
		t.Errorf("after spec update: phase %q observedGeneration %d generation %d, want Ready, %d, %d",
			phase, observed, w.GetGeneration(), generation, generation+1)
	}
}

func TestServiceAccountRBAC(t *testing.T) {
	env := kube.Env(t)
	ns := env.Namespace(t)
	sa := env.ServiceAccount(t, ns, rbacv1.PolicyRule{
		APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list"},
	})
	cfg, err := clientcmd.RESTConfigFromKubeConfig(sa.Kubeconfig)
	if err != nil {
		t.Fatalf("service account kubeconfig: %v", err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().ConfigMaps(ns).List(t.Context(), metav1.ListOptions{}); err != nil {
		t.Errorf("list configmaps with the role: %v", err)
	}
	_, err = client.CoreV1().Secrets(ns).List(t.Context(), metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("list secrets without permission: got %v, want Forbidden", err)
	}
	_, err = client.CoreV1().ConfigMaps("default").List(t.Context(), metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("list configmaps in another namespace: got %v, want Forbidden", err)
	}
}

func TestKubeconfig(t *testing.T) {
	env := kube.Env(t)
	fromFile, err := os.ReadFile(env.KubeconfigPath())
	if err != nil {
		t.Fatal(err)
	}
	if string(fromFile) != string(env.Kubeconfig()) {
		t.Error("KubeconfigPath does not hold Kubeconfig")
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(env.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v, err := client.Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("server version: %v", err)
	}
	if v.Major != "1" || v.GitVersion == "" || v.GitVersion == "v0.0.0-master+$Format:%H$" {
		t.Errorf("server version %+v: the binaries lack the version stamp of hack/k8s-build.sh", v)
	}
}

// TestAPIOnly starts a second, API-only control plane next to the suite's
// and checks that Stop ends it.
func TestAPIOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	t.Parallel()
	env := kubetest.New(t, kubetest.APIOnly, kubetest.WithLog(testWriter{t}))
	if env.Reused() {
		t.Skipf("%s is set: no control plane of its own to test", kubetest.EnvKubeconfig)
	}
	ns := env.Namespace(t)
	if _, err := env.Client().CoreV1().ConfigMaps(ns).Create(t.Context(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "c"}, Data: map[string]string{"k": "v"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if env.NodeName() != "" {
		t.Errorf("API-only control plane has a node %q", env.NodeName())
	}
	if err := env.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client().CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{}); err == nil {
		t.Error("API server still answers after Stop")
	}
	if _, err := os.Stat(env.Dir()); !os.IsNotExist(err) {
		t.Errorf("work dir %s left after Stop: %v", env.Dir(), err)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
