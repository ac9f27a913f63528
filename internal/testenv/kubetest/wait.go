package kubetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitops-resource/gitops-resource/internal/proc"
)

// poll is proc.Poll, marking a component that lost its port (Start then
// tries again on other ports).
func poll(ctx context.Context, what string, p *proc.Process, check func(context.Context) error) error {
	err := proc.Poll(ctx, what, p, check)
	if err != nil && p != nil && p.Exited() != nil && strings.Contains(p.Tail(25), "address already in use") {
		return fmt.Errorf("%w: %w", errAddrInUse, err)
	}
	return err
}

func (e *Env) waitHTTP(ctx context.Context, p *proc.Process, client *http.Client, url string) error {
	began := time.Now()
	err := poll(ctx, p.Name+" at "+url, p, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", resp.Status, body)
		}
		return nil
	})
	if err == nil {
		fmt.Fprintf(e.log, "kubetest: %s ready at %s after %s\n", p.Name, url, time.Since(began).Round(time.Millisecond))
	}
	return err
}

// waitAPIServer waits until the API server's /readyz answers ok.
func (e *Env) waitAPIServer(ctx context.Context, p *proc.Process) error {
	began := time.Now()
	rc := e.client.Discovery().RESTClient()
	err := poll(ctx, "kube-apiserver at "+e.config.Host+"/readyz", p, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		body, err := rc.Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			return fmt.Errorf("%w: %s", err, body)
		}
		return nil
	})
	if err == nil {
		fmt.Fprintf(e.log, "kubetest: kube-apiserver ready at %s after %s\n", e.config.Host, time.Since(began).Round(time.Millisecond))
	}
	return err
}

// waitServiceAccount waits until the service-account controller has made the
// default ServiceAccount in namespace: pods can be admitted there.
func (e *Env) waitServiceAccount(ctx context.Context, p *proc.Process, namespace string) error {
	return poll(ctx, "ServiceAccount "+namespace+"/default", p, func(ctx context.Context) error {
		_, err := e.client.CoreV1().ServiceAccounts(namespace).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
}

// fakeNodeAnnotation marks the Nodes kwok manages.
const fakeNodeAnnotation = "kwok.x-k8s.io/node"

// createFakeNode creates the Node kwok manages, with room for many pods, and
// waits until it is Ready and untainted, so the scheduler places pods on it.
func (e *Env) createFakeNode(ctx context.Context, kwok *proc.Process) (string, error) {
	const name = "kubetest-node"
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("250"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{fakeNodeAnnotation: "fake"},
			Labels: map[string]string{
				"kubernetes.io/hostname": name,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				"type":                   "kwok",
			},
		},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
	if _, err := e.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("create fake node %s: %w", name, err)
	}
	began := time.Now()
	err := poll(ctx, "kwok to make Node "+name+" Ready", kwok, func(ctx context.Context) error {
		n, err := e.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		return nodeReady(n)
	})
	if err != nil {
		return "", err
	}
	fmt.Fprintf(e.log, "kubetest: node %s ready after %s\n", name, time.Since(began).Round(time.Millisecond))
	return name, nil
}

// findFakeNode returns a Ready node managed by kwok, for a reused control plane.
func (e *Env) findFakeNode(ctx context.Context) (string, error) {
	nodes, err := e.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("list nodes: %w", err)
	}
	var errs []error
	for _, n := range nodes.Items {
		if n.Annotations[fakeNodeAnnotation] != "fake" {
			continue
		}
		if err := nodeReady(&n); err != nil {
			errs = append(errs, err)
			continue
		}
		return n.Name, nil
	}
	return "", fmt.Errorf("full mode needs a Ready node annotated %s=fake, found none (%w): start the control plane with hack/cluster.sh", fakeNodeAnnotation, errors.Join(errs...))
}

func nodeReady(n *corev1.Node) error {
	ready := false
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			ready = true
		}
	}
	if !ready {
		return fmt.Errorf("node %s is not Ready", n.Name)
	}
	for _, t := range n.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
			return fmt.Errorf("node %s has taint %s:%s", n.Name, t.Key, t.Effect)
		}
	}
	return nil
}
