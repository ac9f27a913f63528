package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitops-resource/gitops-resource/internal/proc"
	"github.com/gitops-resource/gitops-resource/internal/testenv/kubetest"
)

// The kinds pkg/health judges beyond the workloads, put with mode direct
// and waited for on the real control plane: what sets their status is the
// real controller where the test control plane runs one (the
// PersistentVolume binder of kube-controller-manager), and the test where
// it runs none (a kubelet finishing a pod: kwok completes only a Job's
// pods; a cloud's load-balancer controller).

const oneOffPod = `apiVersion: v1
kind: Pod
metadata:
  name: migrate
spec:
  restartPolicy: Never
  containers:
  - name: migrate
    image: registry.example/db-migrate:1.4.0
`

// meanwhile runs act in the background once ready says the object is
// there, bounded by a minute; the returned channel gives its error.
func meanwhile(t *testing.T, what string, ready func(context.Context) error, act func(context.Context) error) <-chan error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	done, exited := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(exited)
		if err := proc.Poll(ctx, what, nil, ready); err != nil {
			done <- err
			return
		}
		done <- act(ctx)
	}()
	t.Cleanup(func() { cancel(); <-exited })
	return done
}

// finishPod ends the pod as its kubelet would once its container exited
// with code: phase Succeeded (0) or Failed, after kwok has run it.
func finishPod(t *testing.T, env *kubetest.Env, ns, name string, code int32) <-chan error {
	pods := env.Client().CoreV1().Pods(ns)
	return meanwhile(t, "pod "+name+" running", func(ctx context.Context) error {
		p, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err == nil && p.Status.Phase != corev1.PodRunning {
			err = fmt.Errorf("phase %s", p.Status.Phase)
		}
		return err
	}, func(ctx context.Context) error {
		p, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		phase, reason, message := corev1.PodSucceeded, "Completed", ""
		if code != 0 {
			phase, reason, message = corev1.PodFailed, "Error", `relation "users" already exists`
		}
		p.Status.Phase = phase
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "Pod" + map[bool]string{true: "Completed", false: "Failed"}[code == 0]}}
		now := metav1.Now()
		for i := range p.Status.ContainerStatuses {
			cs := &p.Status.ContainerStatuses[i]
			cs.Ready = false
			cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, Message: message, StartedAt: now, FinishedAt: now}}
		}
		_, err = pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
		return err
	})
}

func TestClusterHealthCompletedPod(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	finished := finishPod(t, env, ns, "migrate", 0)
	res := put(t, env, ns, build(t, map[string]string{"pod.yaml": oneOffPod}), map[string]any{"path": "pod.yaml", "timeout": "90s"})
	require.NoError(t, <-finished)
	res.OK(t, nil)
	require.Regexp(t, "Pod/"+ns+"/migrate: (.* → )?Succeeded: every container completed\n", res.Stderr, "a running one-off pod is not done: out waits until it completed")
}

func TestClusterHealthFailedPod(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	finished := finishPod(t, env, ns, "migrate", 1)
	began := time.Now()
	res := put(t, env, ns, build(t, map[string]string{"pod.yaml": oneOffPod}), map[string]any{"path": "pod.yaml", "timeout": "90s"})
	require.NoError(t, <-finished)
	res.Fails(t, "Pod/"+ns+"/migrate failed: Failed", `container migrate terminated: Error (exit 1) relation "users" already exists`)
	require.Less(t, time.Since(began), time.Minute, "fails when the pod fails, not at the timeout")
}

// pvc is a claim on a volume made by hand: no StorageClass, so the PV
// binder binds it to a PersistentVolume that matches, or to none.
func pvc(name string) string {
	return `apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: ` + name + `
spec:
  storageClassName: ""
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
`
}

func TestClusterHealthBoundPVC(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	// A volume made ahead for this claim (claimRef: no other test's claim
	// takes it), as an admin does for a static volume.
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "data-" + ns},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/" + ns}},
			ClaimRef:               &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: ns, Name: "data"},
		},
	}
	pvs := env.Client().CoreV1().PersistentVolumes()
	_, err := pvs.Create(context.Background(), pv, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pvs.Delete(context.Background(), pv.Name, metav1.DeleteOptions{}) })

	res := put(t, env, ns, build(t, map[string]string{"pvc.yaml": pvc("data")}), map[string]any{"path": "pvc.yaml", "timeout": "90s"})
	res.OK(t, nil)
	require.Contains(t, res.Stderr, "PersistentVolumeClaim/"+ns+"/data: ")
	require.Regexp(t, "PersistentVolumeClaim/"+ns+"/data: (.* → )?Bound to PersistentVolume "+pv.Name+"\n", res.Stderr)
	claim, err := env.Client().CoreV1().PersistentVolumeClaims(ns).Get(context.Background(), "data", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, corev1.ClaimBound, claim.Status.Phase, "bound by kube-controller-manager when out returns")
}

func TestClusterHealthPendingPVCExplained(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	res := put(t, env, ns, build(t, map[string]string{"pvc.yaml": pvc("orphan")}), map[string]any{"path": "pvc.yaml", "timeout": "8s"})
	res.Fails(t, "timed out after 8s still waiting for PersistentVolumeClaim/"+ns+"/orphan (Pending, waiting to be bound to a volume)")
	require.Contains(t, res.Stderr, "FailedBinding PersistentVolumeClaim/orphan: no persistent volumes available for this claim", "its events say why")
}

func TestClusterHealthLoadBalancerAddress(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	services := env.Client().CoreV1().Services(ns)
	// The test control plane runs no cloud controller: set the address as
	// one does, once the Service exists.
	addressed := meanwhile(t, "service web", func(ctx context.Context) error {
		_, err := services.Get(ctx, "web", metav1.GetOptions{})
		return err
	}, func(ctx context.Context) error {
		s, err := services.Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.10"}}
		_, err = services.UpdateStatus(ctx, s, metav1.UpdateOptions{})
		return err
	})
	const lb = `apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 443}]
`
	res := put(t, env, ns, build(t, map[string]string{"svc.yaml": lb}), map[string]any{"path": "svc.yaml", "timeout": "90s"})
	require.NoError(t, <-addressed)
	res.OK(t, nil)
	require.Regexp(t, "Service/"+ns+"/web: (.* → )?load balancer at 203.0.113.10\n", res.Stderr)
}
