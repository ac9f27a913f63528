// Package resourcetest drives the built binaries exactly as Concourse does:
// a JSON request on stdin, the build dir as the only argument, and the
// BUILD_* environment. The binary is built once per test process.
//
// It is test infrastructure: imported from _test.go files, e2e/ and bench;
// the code the binary is built of (pkg/..., check, in, out) never imports it.
package resourcetest
