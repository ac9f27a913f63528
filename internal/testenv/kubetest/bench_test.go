package kubetest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/gitops-resource/gitops-resource/internal/testenv/kubetest"
)

// BenchmarkStart measures bring-up (to ready) of a fresh control plane.
func BenchmarkStart(b *testing.B) {
	for _, mode := range []kubetest.Mode{kubetest.APIOnly, kubetest.Full} {
		b.Run(mode.String(), func(b *testing.B) {
			for b.Loop() {
				env, err := kubetest.Start(b.Context(), mode, kubetest.NoReuse())
				if errors.Is(err, kubetest.ErrNoBinaries) {
					b.Skip(err)
				}
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := env.Stop(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkRollout measures a 3-replica Deployment from create to rolled out.
func BenchmarkRollout(b *testing.B) {
	env := kube.Env(b)
	ns := env.Namespace(b)
	deployments := env.Client().AppsV1().Deployments(ns)
	i := 0
	for b.Loop() {
		i++
		name := fmt.Sprintf("web-%d", i)
		if _, err := deployments.Create(b.Context(), deployment(name, 3, "registry.example/web:1"), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		err := wait.PollUntilContextTimeout(b.Context(), 10*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			d, err := deployments.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			ok, _ := rolledOut(d)
			return ok, nil
		})
		if err != nil {
			b.Fatalf("rollout of %s: %v", name, err)
		}
	}
}
