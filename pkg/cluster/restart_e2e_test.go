package cluster_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
	"github.com/gitops-resource/gitops-resource/internal/testenv/kubetest"
)

// TestWaitSurvivesAPIServerRestart: the API server is stopped while out
// waits for a rollout and started again; the wait resumes its watches and
// the put succeeds once the rollout completes. It has a control plane of
// its own, so the restart cannot disturb other tests.
func TestWaitSurvivesAPIServerRestart(t *testing.T) {
	cluster(t) // builds the binaries; skips like the others without a control plane
	env := kubetest.New(t, kubetest.Full, kubetest.NoReuse())
	ns := env.Namespace(t)
	dir := t.TempDir()
	deploy := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: %s}
spec:
  replicas: 1
  progressDeadlineSeconds: 600
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      nodeSelector: {restart-test: ready}
      containers: [{name: web, image: nginx:1.27}]
`, ns)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "web.yaml"), []byte(deploy), 0o644))
	src := map[string]any{"kind": "cluster", "kubeconfig": string(env.Kubeconfig()), "namespace": ns}

	done := make(chan rt.Result, 1)
	go func() {
		done <- rt.Run(t, "out", dir, map[string]any{"source": src, "params": map[string]any{"path": "web.yaml", "timeout": "2m"}}, nil)
	}()
	// Wait until out is waiting: it records the set's inventory ConfigMap
	// after the apply and before the wait.
	require.Eventually(t, func() bool {
		cms, err := env.Client().CoreV1().ConfigMaps(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, cm := range cms.Items {
			if strings.HasPrefix(cm.Name, "gitops-resource-set-") {
				return true
			}
		}
		return false
	}, time.Minute, 50*time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Keep it down for 2 s: a fault of a realistic length, not a wait for readiness.
	require.NoError(t, env.RestartAPIServer(ctx, func() { time.Sleep(2 * time.Second) }))
	// Now let the pod schedule: the rollout completes after the restart.
	patch := []byte(`{"metadata":{"labels":{"restart-test":"ready"}}}`)
	_, err := env.Client().CoreV1().Nodes().Patch(ctx, env.NodeName(), types.MergePatchType, patch, metav1.PatchOptions{})
	require.NoError(t, err)

	select {
	case res := <-done:
		res.OK(t, nil)
		t.Logf("out across the restart:\n%s", res.Stderr)
	case <-time.After(2 * time.Minute):
		t.Fatal("out did not return after the API server came back")
	}
}
