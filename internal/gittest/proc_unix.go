//go:build unix

package gittest

import (
	"os/exec"
	"syscall"
)

// killGroup runs cmd in its own process group and makes its context's
// cancellation kill the whole group, so children such as hooks go too.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
