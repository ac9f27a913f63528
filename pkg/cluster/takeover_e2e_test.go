package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/gitops-resource/gitops-resource/internal/proc"
	"github.com/gitops-resource/gitops-resource/internal/testenv/kubetest"
)

// takeoverBefore is what a user of kubectl apply had running: a ConfigMap
// of two keys, a Deployment with a sidecar, a Service of two ports.
const takeoverBefore = `apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {kept: "1", dropped: "2"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: app, image: registry.example/web:1}
      - {name: sidecar, image: registry.example/proxy:1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80}
  - {name: https, port: 443}
`

// takeoverAfter is the same files after the user dropped a key, the
// sidecar and a port.
const takeoverAfter = `apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {kept: "1"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: app, image: registry.example/web:1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80}
`

// TestClusterTakeoverFromKubectl: objects the real kubectl created (apply,
// and create) are taken over by the first put, so what the manifest no
// longer has is removed from the live objects; the next put has nothing
// left to take over.
func TestClusterTakeoverFromKubectl(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	env.Kubectl(t, takeoverBefore, "--namespace", ns, "apply", "-f", "-")
	env.Kubectl(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: created}\ndata: {kept: \"1\", dropped: \"2\"}\n", "--namespace", ns, "create", "-f", "-")
	// An object from before managedFields: the API server gives its
	// fields to before-first-apply at the first server-side apply.
	cms := env.Client().CoreV1().ConfigMaps(ns)
	_, err := cms.Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "ancient"}, Data: map[string]string{"kept": "1", "dropped": "2"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cms.Patch(t.Context(), "ancient", types.MergePatchType, []byte(`{"metadata": {"managedFields": [{}]}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	ancient, err := cms.Get(t.Context(), "ancient", metav1.GetOptions{})
	require.NoError(t, err)
	require.Empty(t, ancient.ManagedFields)

	after := takeoverAfter + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: created}\ndata: {kept: \"1\"}\n" +
		"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: ancient}\ndata: {kept: \"1\"}\n"
	dir := build(t, map[string]string{"app.yaml": after})
	res := put(t, env, ns, dir, map[string]any{"path": "app.yaml"})
	res.OK(t, nil)
	for _, want := range []string{
		"ConfigMap/" + ns + "/settings: took over fields of kubectl-client-side-apply",
		"Deployment/" + ns + "/web: took over fields of kubectl-client-side-apply",
		"Service/" + ns + "/web: took over fields of kubectl-client-side-apply",
		"ConfigMap/" + ns + "/created: took over fields of kubectl-create",
		"ConfigMap/" + ns + "/ancient: took over fields of before-first-apply",
	} {
		require.Contains(t, res.Stderr, want)
	}

	ctx := t.Context()
	for _, name := range []string{"settings", "created", "ancient"} {
		cm, err := env.Client().CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		require.NoError(t, err)
		require.Equal(t, map[string]string{"kept": "1"}, cm.Data, "ConfigMap %s", name)
		require.NotContains(t, cm.Annotations, corev1.LastAppliedConfigAnnotation, "kubectl's record went with the fields it described")
	}
	d := getDeployment(t, env, ns, "web")
	require.Len(t, d.Spec.Template.Spec.Containers, 1)
	require.Equal(t, "app", d.Spec.Template.Spec.Containers[0].Name)
	svc, err := env.Client().CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	require.Len(t, svc.Spec.Ports, 1)
	require.Equal(t, int32(80), svc.Spec.Ports[0].Port)

	again := put(t, env, ns, dir, map[string]any{"path": "app.yaml"})
	again.OK(t, nil)
	require.NotContains(t, again.Stderr, "took over")
}

// TestClusterConflictNamesTheManagerAndForceTakes: a label another field
// manager (an operator) owns fails the put, naming the field and the
// manager, with nothing applied; force_conflicts takes it.
func TestClusterConflictNamesTheManagerAndForceTakes(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	cms := env.Client().CoreV1().ConfigMaps(ns)
	operator := `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared", "labels": {"team": "ops"}}}`
	_, err := cms.Patch(t.Context(), "shared", types.ApplyPatchType, []byte(operator), metav1.PatchOptions{FieldManager: "operator"})
	require.NoError(t, err)

	dir := build(t, map[string]string{"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\n  labels: {team: dev}\ndata: {k: v}\n"})
	put(t, env, ns, dir, map[string]any{"path": "cm.yaml"}).Fails(t,
		"ConfigMap/"+ns+"/shared", ".metadata.labels.team", `owned by "operator"`, "params.force_conflicts: true", "nothing applied")
	cm, err := cms.Get(t.Context(), "shared", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, "ops", cm.Labels["team"])
	require.Empty(t, cm.Data)

	put(t, env, ns, dir, map[string]any{"path": "cm.yaml", "force_conflicts": true}).OK(t, nil)
	cm, err = cms.Get(t.Context(), "shared", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, "dev", cm.Labels["team"])
	require.Equal(t, map[string]string{"k": "v"}, cm.Data)
}

// TestClusterConflictHPAReplicas: the real HPA controller (in
// kube-controller-manager, scaling through the scale subresource up to its
// minReplicas, no metrics needed) owns replicas once it has scaled. A
// manifest that never set replicas leaves them to it; one that set them
// before fails naming the HPA's manager, leaves them once it drops them,
// and takes them with force_conflicts.
func TestClusterConflictHPAReplicas(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	withoutReplicas := func(name, image string) string {
		return fmt.Sprintf("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: %[1]s}\nspec:\n  selector: {matchLabels: {app: %[1]s}}\n"+
			"  template:\n    metadata: {labels: {app: %[1]s}}\n    spec:\n      containers: [{name: app, image: %[2]q}]\n", name, image)
	}

	t.Run("never set", func(t *testing.T) {
		t.Parallel()
		put(t, env, ns, build(t, map[string]string{"d.yaml": withoutReplicas("free", "registry.example/web:1")}), map[string]any{"path": "d.yaml"}).OK(t, nil)
		hpaScales(t, env, ns, "free", 2)
		put(t, env, ns, build(t, map[string]string{"d.yaml": withoutReplicas("free", "registry.example/web:2")}), map[string]any{"path": "d.yaml"}).OK(t, nil)
		d := getDeployment(t, env, ns, "free")
		require.Equal(t, int32(2), *d.Spec.Replicas, "left to the HPA")
		require.Equal(t, "registry.example/web:2", d.Spec.Template.Spec.Containers[0].Image)
	})

	t.Run("set before", func(t *testing.T) {
		t.Parallel()
		put(t, env, ns, build(t, map[string]string{"d.yaml": deploymentYAML("owned", "registry.example/web:1", 1, "")}), map[string]any{"path": "d.yaml"}).OK(t, nil)
		hpaScales(t, env, ns, "owned", 2)
		set := build(t, map[string]string{"d.yaml": deploymentYAML("owned", "registry.example/web:2", 1, "")})
		put(t, env, ns, set, map[string]any{"path": "d.yaml"}).Fails(t,
			"Deployment/"+ns+"/owned", ".spec.replicas", `with subresource "scale"`, "params.force_conflicts: true")
		require.Equal(t, int32(2), *getDeployment(t, env, ns, "owned").Spec.Replicas)

		put(t, env, ns, build(t, map[string]string{"d.yaml": withoutReplicas("owned", "registry.example/web:2")}), map[string]any{"path": "d.yaml"}).OK(t, nil)
		require.Equal(t, int32(2), *getDeployment(t, env, ns, "owned").Spec.Replicas, "dropped from the manifest: left to the HPA")

		// The HPA goes (or it would scale up again): force_conflicts
		// takes replicas back from the manager it left behind.
		require.NoError(t, env.Client().AutoscalingV2().HorizontalPodAutoscalers(ns).Delete(t.Context(), "owned", metav1.DeleteOptions{}))
		put(t, env, ns, set, map[string]any{"path": "d.yaml", "force_conflicts": true}).OK(t, nil)
		require.Equal(t, int32(1), *getDeployment(t, env, ns, "owned").Spec.Replicas, "forced: the manifest's replicas")
	})
}

// hpaScales creates an HPA of minReplicas for Deployment name, scaled by
// the real controller, and waits until it has scaled the Deployment.
func hpaScales(t *testing.T, env *kubetest.Env, ns, name string, minReplicas int32) {
	t.Helper()
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			MinReplicas:    ptr.To(minReplicas),
			MaxReplicas:    minReplicas + 2,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To(int32(80))},
			}}},
		},
	}
	_, err := env.Client().AutoscalingV2().HorizontalPodAutoscalers(ns).Create(t.Context(), hpa, metav1.CreateOptions{})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	require.NoError(t, proc.Poll(ctx, "the HPA to scale "+name, nil, func(ctx context.Context) error {
		d, err := env.Client().AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if *d.Spec.Replicas != minReplicas {
			return fmt.Errorf("replicas %d", *d.Spec.Replicas)
		}
		return nil
	}))
}
