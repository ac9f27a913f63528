// Package demo runs the push-style delivery job of gitops-resource end to
// end on embedded servers — a git server over HTTP, an OCI registry and a
// Kubernetes control plane (etcd, kube-apiserver, controller-manager,
// scheduler, kwok), all on 127.0.0.1 — driving the built binaries exactly as
// Concourse does and printing each step: `make demo-local`.
//
// Its code is in _test.go files. It may import any package of this module;
// nothing imports it.
package demo
