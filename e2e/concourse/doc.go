// Package concourse checks the pipelines this repo ships (pipelines-examples/
// and ci/) with a real fly, and runs one of them end to end on a real
// Concourse (web + worker) built from Go modules by hack/concourse-build.sh.
// The stack itself (stack.sh, testdata/pipeline.yml) is driven by
// internal/testenv/concourse, which make demo (hack/demo) shares.
//
// Its code is in _test.go files. It may import any package of this module;
// nothing imports it.
package concourse
