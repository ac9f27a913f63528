// Package kubetest runs a real Kubernetes control plane for tests: etcd and
// kube-apiserver, and in Full mode kube-controller-manager, kube-scheduler and
// kwok with one fake Node, so Deployments really roll out (and really fail).
// Every component binds 127.0.0.1 on a free port and is stopped by PID.
//
// A package shares one control plane among its tests:
//
//	var kube kubetest.Suite
//
//	func TestMain(m *testing.M) { kube.Main(m, kubetest.Full) }
//
//	func TestRollout(t *testing.T) {
//		env := kube.Env(t)
//		ns := env.Namespace(t)
//		...
//	}
//
// A single test can have its own with New(t, ...), and a program with Start.
//
// Environment:
//
//	GITOPS_TEST_KUBECONFIG  path of the admin kubeconfig of a running control plane
//	                        (hack/cluster.sh prints it); used instead of starting one.
//	GITOPS_K8S_BIN          dir holding etcd, kube-apiserver, kube-controller-manager,
//	                        kube-scheduler and kwok; default: the hack/k8s-build.sh cache.
//	CI=true                 missing binaries fail the tests instead of skipping them.
//
// The binaries are built from tools/k8s by hack/k8s-build.sh (make tools).
//
// It is test infrastructure: imported from _test.go files, e2e/, bench and
// the other harnesses, never by the code the binary is built of (pkg/...,
// check, in, out).
package kubetest
