// Package kube is the Kubernetes side of the resource: client construction
// from a kubeconfig or a server and token, server-side apply of a set of
// objects, watch-based waiting on pkg/health's judges with fail-fast
// diagnosis, pruning by set label, and errors that say what to check.
//
// It is a shared package: it never imports a kind nor pkg/app (pkg/cluster
// builds on it, not the reverse), and never the test harnesses that run the
// control plane and agents its tests use (kubetest, agenttest).
package kube
