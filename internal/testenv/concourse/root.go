package concourse

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// Root is the root of this repository.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// Bin returns the bin dir of hack/concourse-build.sh when what is asked (fly
// alone, or everything) is built there, or an error saying why not.
func Bin(flyOnly bool) (string, error) {
	args := []string{"--check"}
	if flyOnly {
		args = append(args, "fly")
	}
	cmd := exec.Command(filepath.Join(Root(), "hack", "concourse-build.sh"), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", errors.New(strings.TrimSpace(stderr.String()))
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	return lines[len(lines)-1], nil
}
