// Package secrets runs every verb of every kind with credentials that fail
// in each way the tests can make, and asserts that no credential appears in
// stdout, stderr (which holds the error and the metadata's story), or the
// build dir, and that nothing is written to $HOME.
//
// Its code is in _test.go files. It may import any package of this module;
// nothing imports it.
package secrets
