// Package concourse runs the end-to-end stack: a real Concourse (web, a
// containerd worker and postgres, brought up by e2e/concourse/stack.sh in a
// private network namespace), with this tree's image in the stack's
// registry, a git server and a control plane reachable from its containers,
// and the pipelines of e2e/concourse/testdata set, triggered and waited for.
// TestConcourseEndToEnd (e2e/concourse) and make demo (hack/demo) share it.
// For TestPipelineCI, which runs ci/pipeline.yml, it also makes the Go task
// image from this machine's files (GoImage), serves what the containers
// need over HTTP in the namespace (Serve: the module cache as a GOPROXY),
// and waits for the builds a pipeline's triggers start (WatchJob).
//
// It takes a context and a log writer and returns errors; it needs no
// *testing.T. It is test infrastructure: it may import internal/gittest,
// internal/image, internal/proc and internal/testenv/kubetest, and only
// _test.go files, e2e/ and hack/ may import it.
package concourse
