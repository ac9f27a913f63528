// Package proc runs the test servers' executables (control plane, agents):
// each in its own process group, killed by the kernel if the test binary
// dies, its output in <dir>/<name>.log; stopped by group, SIGTERM then
// SIGKILL. It also finds free loopback ports and polls for readiness.
//
// It is test infrastructure, for the other harnesses and tests;
// the code the binary is built of (pkg/..., check, in, out) never imports it.
package proc
