package cluster_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// BenchmarkApply100 puts 100 objects through the built out binary against
// the kubetest control plane, each iteration changing every object (a new
// image for Deployments, so 100 rollouts per op). For Deployments it also
// reports ms-ready-to-exit: from the moment the benchmark's own watch sees
// the last Deployment rolled out to the moment out has exited — the
// latency the waiting adds on top of the cluster.
//
//	go test ./pkg/cluster -run '^$' -bench Apply100 -benchtime 5x
func BenchmarkApply100(b *testing.B) {
	for _, kind := range []string{"configmaps", "deployments"} {
		b.Run(kind, func(b *testing.B) {
			env := cluster(b)
			ns := env.Namespace(b)
			var mu sync.Mutex
			want := ""
			var allReadyAt time.Time
			if kind == "deployments" {
				f := informers.NewSharedInformerFactoryWithOptions(env.Client(), 0, informers.WithNamespace(ns))
				inf := f.Apps().V1().Deployments().Informer()
				check := func(any) {
					mu.Lock()
					defer mu.Unlock()
					if want == "" || !allReadyAt.IsZero() {
						return
					}
					ready := 0
					for _, o := range inf.GetStore().List() {
						d := o.(*appsv1.Deployment)
						s := d.Status
						if d.Spec.Template.Spec.Containers[0].Image == want && s.ObservedGeneration >= d.Generation &&
							s.UpdatedReplicas == 1 && s.Replicas == 1 && s.AvailableReplicas == 1 {
							ready++
						}
					}
					if ready == 100 {
						allReadyAt = time.Now()
					}
				}
				_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: check, UpdateFunc: func(_, n any) { check(n) }})
				stop := make(chan struct{})
				defer close(stop)
				f.Start(stop)
				f.WaitForCacheSync(stop)
			}
			var gap time.Duration
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				image := fmt.Sprintf("registry.example/web:%d", i)
				var m strings.Builder
				for j := range 100 {
					if kind == "deployments" {
						m.WriteString("---\n" + deploymentYAML(fmt.Sprintf("web-%03d", j), image, 1, ""))
					} else {
						fmt.Fprintf(&m, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%03d}\ndata: {iteration: \"%d\"}\n", j, i)
					}
				}
				dir := build(b, map[string]string{"m.yaml": m.String()})
				mu.Lock()
				want, allReadyAt = image, time.Time{}
				mu.Unlock()
				b.StartTimer()
				put(b, env, ns, dir, map[string]any{"path": "m.yaml"}).OK(b, nil)
				exited := time.Now()
				b.StopTimer()
				if kind == "deployments" {
					mu.Lock()
					at := allReadyAt
					mu.Unlock()
					if at.IsZero() {
						b.Fatalf("iteration %d: out returned before the benchmark saw every Deployment rolled out", i)
					}
					gap += exited.Sub(at)
				}
				b.StartTimer()
			}
			if kind == "deployments" {
				b.ReportMetric(float64(gap.Milliseconds())/float64(b.N), "ms-ready-to-exit")
			}
		})
	}
}
