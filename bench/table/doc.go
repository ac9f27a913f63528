// Command table reads `go test -bench` output on stdin, copies it to
// stdout as it arrives, and ends with one markdown table: each figure the
// median of the runs (-count) with their min–max. `make bench` pipes every
// benchmark into it.
//
// It imports only the standard library.
package main
