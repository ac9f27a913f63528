package kubetest

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// ImageIDFunc returns the imageID the kubelet would report for a container
// of pod ("" leaves it unset).
type ImageIDFunc func(pod *corev1.Pod, container corev1.ContainerStatus) string

// ReportImageIDs plays the kubelet's part that kwok leaves out: until t
// ends, every running pod in namespace gets status.containerStatuses[].imageID
// set by imageID, once, for tests of verify_images. It watches the pods
// (no polling) and returns once the watch is established, so no pod
// created afterwards is missed.
func (e *Env) ReportImageIDs(t testing.TB, namespace string, imageID ImageIDFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pods := e.client.CoreV1().Pods(namespace)
	w, err := pods.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		cancel()
		t.Fatalf("kubetest: watch pods in %s: %v", namespace, err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		cancel() // ends the watch
		<-done
	})
	go func() {
		defer close(done)
		defer func() { w.Stop() }()
		for {
			ev, ok := <-w.ResultChan()
			if !ok {
				if ctx.Err() != nil {
					return
				}
				// The watch closed (server timeout): resume from now; pods
				// that changed meanwhile send another event once running.
				if w, err = pods.Watch(ctx, metav1.ListOptions{}); err != nil {
					return
				}
				continue
			}
			p, isPod := ev.Object.(*corev1.Pod)
			if !isPod || (ev.Type != watch.Added && ev.Type != watch.Modified) || p.Status.Phase != corev1.PodRunning {
				continue
			}
			changed := false
			for i, cs := range p.Status.ContainerStatuses {
				if cs.ImageID != "" {
					continue
				}
				if id := imageID(p, cs); id != "" {
					p.Status.ContainerStatuses[i].ImageID = id
					changed = true
				}
			}
			if changed {
				// A conflict means a newer pod state is on its way as an event.
				_, _ = pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
			}
		}
	}()
}

// Grant binds sa to a Role in namespace holding rules, for a pipeline
// identity that needs rights in more than its own namespace. It is deleted
// with the namespace.
func (e *Env) Grant(t testing.TB, sa *ServiceAccount, namespace string, rules ...rbacv1.PolicyRule) {
	t.Helper()
	if err := e.grant(t.Context(), sa, namespace, rules); err != nil {
		t.Fatalf("kubetest: %v", err)
	}
}

func (e *Env) grant(ctx context.Context, sa *ServiceAccount, namespace string, rules []rbacv1.PolicyRule) error {
	rbac := e.client.RbacV1()
	role, err := rbac.Roles(namespace).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{GenerateName: sa.Name + "-"}, Rules: rules}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create role in %s for %s/%s: %w", namespace, sa.Namespace, sa.Name, err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name, Namespace: namespace},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: sa.Namespace}},
	}
	if _, err := rbac.RoleBindings(namespace).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create role binding %s/%s: %w", namespace, role.Name, err)
	}
	return nil
}
