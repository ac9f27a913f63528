package kubetest

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// errAddrInUse marks a component that lost its port to another process
// between proc.FreePorts and its bind; Start then tries again on new ports.
var errAddrInUse = errors.New("port taken")

// Work dirs are os.TempDir()/kubetest-*, with the PID of the process that
// made them in ownerFile.
const (
	workDirPrefix = "kubetest-"
	ownerFile     = "owner.pid"
)

// removeStaleDirs removes the work dirs of processes that are gone. A test
// binary killed outright (SIGKILL, or -timeout's panic) cannot remove its own:
// the kernel kills its components (Pdeathsig), and the next Start cleans up.
func removeStaleDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), workDirPrefix+"*"))
	for _, dir := range dirs {
		data, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(dir)
		}
	}
}
