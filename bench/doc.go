// Package bench measures the binaries against the git CLI doing the same
// work on the same inputs in the same run: `make bench`.
//
// Its code is all in _test.go files, which drive the built binaries with
// internal/resourcetest against internal/gittest servers. Nothing imports
// it.
package bench
