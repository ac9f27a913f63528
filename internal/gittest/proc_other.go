//go:build !unix

package gittest

import "os/exec"

// killGroup is a no-op where process groups are not available: cancelling
// kills only git itself.
func killGroup(*exec.Cmd) {}
