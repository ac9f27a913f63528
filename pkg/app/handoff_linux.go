package app

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// handOff replaces this process with the binary sibling of this binary's
// directory (os.Executable: never looked up in PATH), as if Concourse had
// started it: the verb as argv[0], the same arguments and environment, and
// the request this process read as its stdin, from a memory file (nothing
// on disk, no size limit). Its output, exit code and signals are then its
// own. It returns only when that fails.
func handOff(verb Verb, sibling string, args []string, request []byte) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this binary, to start %s beside it: %w", sibling, err)
	}
	path := filepath.Join(filepath.Dir(self), sibling)
	if err := stdinFrom(request); err != nil {
		return fmt.Errorf("hand the request to %s: %w", path, err)
	}
	err = unix.Exec(path, append([]string{string(verb)}, args...), os.Environ())
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("start %s: no such file: it is built with check, in and out (make build, make image): %w", path, err)
	}
	return fmt.Errorf("start %s: %w", path, err)
}

// stdinFrom makes data this process's stdin, read from its start.
func stdinFrom(data []byte) error {
	fd, err := unix.MemfdCreate("request", unix.MFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("create a memory file: %w", err)
	}
	f := os.NewFile(uintptr(fd), "request")
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write the memory file: %w", err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		return fmt.Errorf("rewind the memory file: %w", err)
	}
	// dup3 without O_CLOEXEC: fd 0 stays open across exec.
	if err := unix.Dup3(int(f.Fd()), 0, 0); err != nil {
		return fmt.Errorf("make the memory file stdin: %w", err)
	}
	return nil
}
