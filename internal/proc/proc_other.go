//go:build unix && !linux

package proc

import (
	"os"
	"syscall"
)

// sysProcAttr puts each process in its own process group, so Stop can
// signal it by group.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

func signalGroup(pid int, sig syscall.Signal) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Signal(sig)
}
