package resource

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Input is everything a verb of a kind gets: the request, the build dir
// (in and out only), the build environment, a log writer (stderr, redacted)
// and the redactor to register the request's secrets with.
type Input struct {
	Request Request
	Dir     string
	Env     Env
	Log     io.Writer
	Secrets *Redactor
}

// Kind is the three verbs of one kind.
type Kind struct {
	Check func(context.Context, Input) (any, error)
	In    func(context.Context, Input) (Response, error)
	Out   func(context.Context, Input) (Response, error)
}

// Logf writes one line to the log.
func (in Input) Logf(format string, args ...any) {
	fmt.Fprintf(in.Log, format+"\n", args...)
}

// Path resolves a path a param names, relative to the build dir. Absolute
// paths, paths with "..", and symlinks that lead outside the build dir are
// refused; field names the param in the error.
func (in Input) Path(field, rel string) (string, error) {
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
	root, err := filepath.EvalSymlinks(in.Dir)
	if err != nil {
		return "", fmt.Errorf("%s: resolve build dir: %w", field, err)
	}
	full := filepath.Join(root, clean)
	resolved, err := filepath.EvalSymlinks(full)
	if os.IsNotExist(err) {
		return full, nil // the caller reports a missing file with context
	}
	if err != nil {
		return "", ConfigErrorf("%s: %q: %v", field, rel, err)
	}
	if r, err := filepath.Rel(root, resolved); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return "", ConfigErrorf("%s: %q is a symlink that leaves the build dir", field, rel)
	}
	return resolved, nil
}

// ReadParamFile reads the file a param names and trims surrounding space.
func (in Input) ReadParamFile(field, rel string) (string, error) {
	p, err := in.Path(field, rel)
	if err != nil {
		return "", err
	}
	data, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return "", ConfigErrorf("%s: %s does not exist in the build dir (is the input that makes it mapped into this step?)", field, rel)
	}
	if err != nil {
		return "", ConfigErrorf("%s: read %s: %v", field, rel, err)
	}
	return strings.TrimSpace(string(data)), nil
}

// NewKind assembles a kind from its typed verbs; check's versions are
// returned as the JSON array Concourse reads (never null).
func NewKind[V any](check func(context.Context, Input) ([]V, error), in, out func(context.Context, Input) (Response, error)) Kind {
	return Kind{
		Check: func(ctx context.Context, i Input) (any, error) {
			versions, err := check(ctx, i)
			if versions == nil && err == nil {
				versions = []V{}
			}
			return versions, err
		},
		In:  in,
		Out: out,
	}
}
