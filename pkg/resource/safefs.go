package resource

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// OpenBuildDir opens the build dir as an os.Root: the one way a step reads
// the files its params name, and the files under a dir one names. Nothing
// read through it resolves outside the build dir: a symlink may lead
// anywhere inside it (an input reached under another name), while one that
// leads out, or is absolute, is refused, as is a ".." that climbs out.
// Close it when done.
func (in Input) OpenBuildDir() (*os.Root, error) {
	root, err := os.OpenRoot(in.Dir)
	if err != nil {
		return nil, fmt.Errorf("open the build dir: %w", err)
	}
	return root, nil
}

// ParamPath checks the path a param (field) names and returns it cleaned,
// relative to the build dir, to read through OpenBuildDir's root. An empty
// or absolute path, or one whose ".." leaves the build dir, is a config
// error naming field.
func ParamPath(field, rel string) (string, error) {
	if rel == "" {
		return "", ConfigErrorf("%s is empty", field)
	}
	if filepath.IsAbs(rel) {
		return "", ConfigErrorf("%s: %q must be relative to the build dir, not absolute", field, rel)
	}
	clean := filepath.Clean(rel)
	if clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return "", ConfigErrorf("%s: %q leaves the build dir", field, rel)
	}
	return clean, nil
}

// ParamError is err, from reading rel (the path field names, or a file
// under it) through OpenBuildDir's root, as a config error for the
// pipeline author: what is missing, or which path leads out through a
// symlink.
func ParamError(field, rel string, err error) error {
	where := rel
	var pe *os.PathError
	if errors.As(err, &pe) {
		where = filepath.ToSlash(pe.Path)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return ConfigErrorf("%s: %s does not exist in the build dir (is the input that makes it mapped into this step?)", field, where)
	case Escapes(err):
		return ConfigErrorf("%s: %s is, or passes through, a symlink that leaves the build dir: refused", field, where)
	}
	return ConfigErrorf("%s %s: %v", field, rel, err)
}

// Escapes reports whether err is an os.Root refusing a path that leads
// outside it (through a symlink, or an absolute one). package os keeps
// that error unexported; its text is pinned by this package's tests.
func Escapes(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe) && pe.Err.Error() == "path escapes from parent"
}

// ReadParamFile reads the file a param names and trims surrounding space.
func (in Input) ReadParamFile(field, rel string) (string, error) {
	name, err := ParamPath(field, rel)
	if err != nil {
		return "", err
	}
	root, err := in.OpenBuildDir()
	if err != nil {
		return "", err
	}
	defer root.Close()
	data, err := root.ReadFile(name)
	if err != nil {
		return "", ParamError(field, rel, err)
	}
	return strings.TrimSpace(string(data)), nil
}
