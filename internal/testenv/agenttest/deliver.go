package agenttest

import (
	"context"
	"fmt"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitops-resource/gitops-resource/internal/testenv/kubetest"
)

// Apply server-side applies the YAML documents in doc to env, putting
// namespaced objects without a namespace into namespace, and deletes them
// when t ends. Kinds whose CRDs were just installed are waited for.
func Apply(t testing.TB, env *kubetest.Env, namespace, doc string) {
	t.Helper()
	a, err := newApplier(env.Config())
	if err != nil {
		t.Fatalf("agenttest: %v", err)
	}
	objs, err := decodeYAML([]byte(doc))
	if err != nil {
		t.Fatalf("agenttest: decode the objects to apply: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for _, obj := range objs {
		if err := a.apply(ctx, namespace, obj); err != nil {
			t.Fatalf("agenttest: %v", err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			gvk := obj.GroupVersionKind()
			m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			if err != nil {
				t.Errorf("agenttest: delete %s %s: %v", gvk.Kind, obj.GetName(), err)
				return
			}
			ri := a.dyn.Resource(m.Resource)
			if m.Scope.Name() == meta.RESTScopeNameNamespace {
				err = ri.Namespace(obj.GetNamespace()).Delete(ctx, obj.GetName(), metav1.DeleteOptions{})
			} else {
				err = ri.Delete(ctx, obj.GetName(), metav1.DeleteOptions{})
			}
			if err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("agenttest: delete %s %s: %v", gvk.Kind, obj.GetName(), err)
			}
		})
	}
}

// FluxGitRepository is a GitRepository "config" following branch main of
// url, polling hourly: changes arrive when a reconcile is requested.
func FluxGitRepository(url string) string {
	return fmt.Sprintf(`apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: config}
spec: {url: %s, interval: 1h, ref: {branch: main}}
`, url)
}

// FluxKustomization is how the tests hand a config repo to Flux: the
// FluxGitRepository of url, and a Kustomization name applying path from it
// into targetNamespace, pruning, retrying every 3 s. With healthTimeout > 0
// it also waits that long at most for the applied objects to be healthy
// (spec.wait).
func FluxKustomization(name, url, path, targetNamespace string, healthTimeout time.Duration) string {
	return FluxGitRepository(url) + fluxKustomization(name, "GitRepository", "config", path, targetNamespace, healthTimeout)
}

// FluxOCIRepository is an OCIRepository "manifests" following the newest
// tag in the semver range of repository repo ("127.0.0.1:PORT/name", plain
// HTTP: insecure), polling hourly: changes arrive when a reconcile is
// requested. It takes the layer of Flux's media type, as `flux push
// artifact` writes it, and extracts it.
func FluxOCIRepository(repo, semverRange string) string {
	return fmt.Sprintf(`apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: manifests}
spec:
  url: oci://%s
  insecure: true
  interval: 1h
  ref: {semver: %q}
  layerSelector: {mediaType: application/vnd.cncf.flux.content.v1.tar+gzip, operation: extract}
`, repo, semverRange)
}

// FluxOCIKustomization is FluxKustomization for an artifact: the
// FluxOCIRepository of repo and semverRange, and a Kustomization name
// applying path from it.
func FluxOCIKustomization(name, repo, semverRange, path, targetNamespace string, healthTimeout time.Duration) string {
	return FluxOCIRepository(repo, semverRange) + fluxKustomization(name, "OCIRepository", "manifests", path, targetNamespace, healthTimeout)
}

// fluxKustomization is a Kustomization name applying path from the source
// kind/source into targetNamespace, pruning, retrying every 3 s, waiting
// healthTimeout for health when it is > 0.
func fluxKustomization(name, kind, source, path, targetNamespace string, healthTimeout time.Duration) string {
	health := ""
	if healthTimeout > 0 {
		health = fmt.Sprintf("  wait: true\n  timeout: %s\n", healthTimeout)
	}
	return fmt.Sprintf(`---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: %s}
spec:
  interval: 1h
  retryInterval: 3s
  sourceRef: {kind: %s, name: %s}
  path: %s
  prune: true
  targetNamespace: %s
%s`, name, kind, source, path, targetNamespace, health)
}

// ArgoCDApplication is how the tests hand a config repo to Argo CD: an
// Application name in project default, following path on branch main of
// url into namespace, without automated sync.
func ArgoCDApplication(name, url, path, namespace string) string {
	return fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: %s}
spec:
  project: default
  source: {repoURL: %s, path: %s, targetRevision: main}
  destination: {server: https://kubernetes.default.svc, namespace: %s}
`, name, url, path, namespace)
}
