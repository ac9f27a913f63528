//go:build !linux

package app

import "fmt"

// handOff runs on Linux only, where the image runs: elsewhere a sibling's
// kind fails, naming the binary that runs it.
func handOff(verb Verb, sibling string, args []string, request []byte) error {
	return fmt.Errorf("the %s binary runs this kind, and check, in and out start it on Linux only", sibling)
}
