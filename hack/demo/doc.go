// Command demo is make demo: it brings up the end-to-end stack of
// internal/testenv/concourse (a real Concourse, this tree's image in its
// registry, a git server and a Kubernetes control plane), runs
// pipelines-examples/push-direct on it to a green build, prints where to look
// (the Concourse URL, the fly login, the git clone URL, the kubeconfig and
// namespace) and holds until SIGINT or SIGTERM, then tears everything down.
// It needs root, as the stack does.
//
// It is test infrastructure around internal/testenv/concourse, gittest and
// kubetest; nothing imports it.
package main
