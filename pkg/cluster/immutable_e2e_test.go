package cluster_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// TestClusterImmutable: a change the API server refuses as immutable (a
// Job's template, a Deployment's selector, a Service's clusterIP) fails
// the put naming the object and the field, with nothing applied; with
// recreate_on_immutable the object is deleted, gone, and created again.
func TestClusterImmutable(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	job := func(image string) string {
		return fmt.Sprintf("apiVersion: batch/v1\nkind: Job\nmetadata: {name: migrate}\nspec:\n  template:\n    spec:\n"+
			"      restartPolicy: Never\n      containers: [{name: migrate, image: %q}]\n", image)
	}
	deployment := func(selector string) string {
		return fmt.Sprintf("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 1\n  selector: {matchLabels: %[1]s}\n"+
			"  template:\n    metadata: {labels: %[1]s}\n    spec:\n      containers: [{name: app, image: registry.example/web:1}]\n", selector)
	}
	service := func(clusterIP string) string {
		return "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{port: 80}]\n" + clusterIP
	}
	dyn, err := dynamic.NewForConfig(env.Config())
	require.NoError(t, err)
	tests := []struct {
		name, before, after, field string
		resource                   schema.GroupVersionResource
		kind, objName              string
	}{
		{"job template", job("registry.example/migrate:1"), job("registry.example/migrate:2"), "spec.template",
			schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}, "Job", "migrate"},
		{"deployment selector", deployment("{app: web}"), deployment("{app: web, tier: front}"), "spec.selector",
			schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, "Deployment", "web"},
		{"service clusterIP", service(""), service("  clusterIP: None\n"), "spec.clusterIPs[0]",
			schema.GroupVersionResource{Version: "v1", Resource: "services"}, "Service", "web"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := env.Namespace(t)
			ri := dyn.Resource(tc.resource).Namespace(ns)
			ref := tc.kind + "/" + ns + "/" + tc.objName
			put(t, env, ns, build(t, map[string]string{"m.yaml": tc.before}), map[string]any{"path": "m.yaml"}).OK(t, nil)
			before, err := ri.Get(t.Context(), tc.objName, metav1.GetOptions{})
			require.NoError(t, err)

			after := build(t, map[string]string{"m.yaml": tc.after})
			put(t, env, ns, after, map[string]any{"path": "m.yaml"}).Fails(t, ref, tc.field, "params.recreate_on_immutable: true", "nothing applied")
			same, err := ri.Get(t.Context(), tc.objName, metav1.GetOptions{})
			require.NoError(t, err)
			require.Equal(t, before.GetUID(), same.GetUID())

			res := put(t, env, ns, after, map[string]any{"path": "m.yaml", "recreate_on_immutable": true})
			res.OK(t, nil)
			require.Contains(t, res.Stderr, ref+": the server refuses the change in place: deleting it to create it again")
			require.Contains(t, res.Stderr, ref+" created")
			now, err := ri.Get(t.Context(), tc.objName, metav1.GetOptions{})
			require.NoError(t, err)
			require.NotEqual(t, before.GetUID(), now.GetUID(), "a new object")
			changed := map[string]func(*unstructured.Unstructured) any{
				"Job": func(u *unstructured.Unstructured) any {
					cs, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
					return cs[0].(map[string]any)["image"]
				},
				"Deployment": func(u *unstructured.Unstructured) any {
					l, _, _ := unstructured.NestedStringMap(u.Object, "spec", "selector", "matchLabels")
					return l
				},
				"Service": func(u *unstructured.Unstructured) any {
					ip, _, _ := unstructured.NestedString(u.Object, "spec", "clusterIP")
					return ip
				},
			}[tc.kind]
			require.NotEqual(t, changed(before), changed(now))
		})
	}
}
