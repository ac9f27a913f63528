// Package concourse checks the pipelines this repo ships (pipelines-examples/
// and ci/) with a real fly, and runs one of them end to end on a real
// Concourse (web + worker) built from Go modules by hack/concourse-build.sh.
//
// Its code is in _test.go files, but for netns_linux.go (listening and
// dialling inside the stack's network namespace). It may import any package
// of this module; nothing imports it.
package concourse
