// Package gittest runs real git servers on loopback for tests: smart HTTP
// through `git http-backend`, and SSH (golang.org/x/crypto/ssh) running the
// real `git upload-pack` / `git receive-pack`. It also seeds and inspects the
// bare repositories it serves with the git CLI.
//
// Every Server has its own temp dir, ports and keys, is stopped by t.Cleanup,
// and is safe to use from parallel tests. Listeners are bound before New
// returns, so there is nothing to wait for.
//
// The git CLI always runs with GIT_CONFIG_GLOBAL=/dev/null,
// GIT_CONFIG_NOSYSTEM=1, HOME set to the server's dir and a fixed identity,
// so neither the machine's nor the user's git configuration matters and
// nothing is written to $HOME.
//
// It is test infrastructure: imported from _test.go files, e2e/, bench and
// the other harnesses, never by the code the binary is built of (pkg/...,
// check, in, out).
package gittest
