// Package agenttest runs real GitOps agents against a kubetest control plane:
// Flux's source-controller and kustomize-controller (and, with
// WithHelmController, helm-controller), and Argo CD's
// application-controller and repo-server (with redis). The agents run as
// local processes, each in its own process group, listening on 127.0.0.1 on
// free ports, and are stopped by PID.
//
//	var kube kubetest.Suite
//
//	func TestMain(m *testing.M) { kube.Main(m, kubetest.Full) }
//
//	func TestFlux(t *testing.T) {
//		env := kube.Env(t)
//		flux := agenttest.StartFlux(t, env)
//		... create a GitRepository and a Kustomization in flux.Namespace() ...
//	}
//
// Both agents watch the whole cluster, so start at most one Flux and one
// Argo CD per control plane at a time.
//
// Environment:
//
//	GITOPS_FLUX_BIN     dir holding source-controller and kustomize-controller, with
//	                    their CRDs in ../manifests/crds; default: the
//	                    hack/agents-build.sh cache.
//	GITOPS_HELM_BIN     dir holding helm-controller, with its CRDs in
//	                    ../manifests/crds (WithHelmController); default: the
//	                    hack/agents-build.sh cache (agent "helm").
//	GITOPS_ARGOCD_BIN   dir holding argocd-application-controller and
//	                    argocd-repo-server, with ../manifests/{crds,config};
//	                    default: the hack/agents-build.sh cache.
//	GITOPS_REDIS_SERVER path of redis-server (default: found in PATH).
//	CI=true             missing binaries fail the tests instead of skipping them.
//
// The binaries are built from tools/flux/* and tools/argocd by
// hack/agents-build.sh, which also installs redis-server.
//
// It is test infrastructure: imported from _test.go files, e2e/, bench and
// the other harnesses, never by the code the binary is built of (pkg/...,
// check, in, out).
package agenttest
