package proc

import "syscall"

// sysProcAttr puts each process in its own process group, so Stop can
// signal it by group, and has the kernel kill it when the process that
// started it dies (a test binary that panics or hits -timeout leaves nothing behind).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func signalGroup(pid int, sig syscall.Signal) error {
	return syscall.Kill(-pid, sig)
}
