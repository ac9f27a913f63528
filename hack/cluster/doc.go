// Command cluster runs the full test control plane (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, kwok with one fake Node) on
// 127.0.0.1 until interrupted, for a person to use with kubectl or to point
// go test at with GITOPS_TEST_KUBECONFIG. hack/cluster.sh builds and runs it.
//
// It is test infrastructure around kubetest, the one package of this module
// it imports.
package main
