package kustomize

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/gitops-resource/gitops-resource/pkg/resource"
)

// rootFS is the file system kustomize builds from: the dir of an os.Root,
// read-only. Kustomize names files by absolute path; each must lie under
// dir and is read through the root, so nothing a kustomization names
// (resources: [../../..], a file or base that is a symlink out) is read
// from outside it.
type rootFS struct {
	root *os.Root
	dir  string // the root's absolute path, symlinks resolved
}

var _ filesys.FileSystem = rootFS{}

func newRootFS(root *os.Root) (rootFS, error) {
	abs, err := filepath.Abs(root.Name())
	if err != nil {
		return rootFS{}, err
	}
	dir, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return rootFS{}, err
	}
	return rootFS{root: root, dir: dir}, nil
}

// name maps a path kustomize uses to a name under the root.
func (r rootFS) name(p string) (string, error) {
	if !filepath.IsAbs(p) {
		p = filepath.Join(r.dir, p)
	}
	rel, err := filepath.Rel(r.dir, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%s is outside %s: refused", p, r.dir)
	}
	return rel, nil
}

// fail says which path leads out when the root refuses one.
func (r rootFS) fail(p string, err error) error {
	if resource.Escapes(err) {
		return fmt.Errorf("%s is, or passes through, a symlink that leads outside %s: refused", p, r.dir)
	}
	return err
}

var errReadOnly = errors.New("kustomize build may not write files")

func (rootFS) Create(string) (filesys.File, error) { return nil, errReadOnly }
func (rootFS) Mkdir(string) error                  { return errReadOnly }
func (rootFS) MkdirAll(string) error               { return errReadOnly }
func (rootFS) RemoveAll(string) error              { return errReadOnly }
func (rootFS) WriteFile(string, []byte) error      { return errReadOnly }

func (r rootFS) Open(p string) (filesys.File, error) {
	name, err := r.name(p)
	if err != nil {
		return nil, err
	}
	f, err := r.root.Open(name)
	if err != nil {
		return nil, r.fail(p, err)
	}
	return f, nil
}

func (r rootFS) stat(p string) (fs.FileInfo, error) {
	name, err := r.name(p)
	if err != nil {
		return nil, err
	}
	info, err := r.root.Stat(name)
	if err != nil {
		return nil, r.fail(p, err)
	}
	return info, nil
}

func (r rootFS) IsDir(p string) bool {
	info, err := r.stat(p)
	return err == nil && info.IsDir()
}

func (r rootFS) Exists(p string) bool {
	_, err := r.stat(p)
	return err == nil
}

func (r rootFS) ReadDir(p string) ([]string, error) {
	name, err := r.name(p)
	if err != nil {
		return nil, err
	}
	entries, err := fs.ReadDir(r.root.FS(), filepath.ToSlash(name))
	if err != nil {
		return nil, r.fail(p, err)
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names, nil
}

func (r rootFS) ReadFile(p string) ([]byte, error) {
	name, err := r.name(p)
	if err != nil {
		return nil, err
	}
	data, err := r.root.ReadFile(name)
	if err != nil {
		return nil, r.fail(p, err)
	}
	return data, nil
}

// CleanedAbs is kustomize's on-disk CleanedAbs (symlinks resolved, so its
// load restrictor keeps a kustomization's files under its own dir), with
// the resolved path required to stay under the root.
func (r rootFS) CleanedAbs(p string) (filesys.ConfirmedDir, string, error) {
	if _, err := r.name(p); err != nil {
		return "", "", err
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(r.dir, p)
	}
	resolved, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", "", fmt.Errorf("resolve %s: %w", p, err)
	}
	if _, err := r.name(resolved); err != nil {
		return "", "", fmt.Errorf("%s is, or passes through, a symlink that leads outside %s: refused", p, r.dir)
	}
	if r.IsDir(resolved) {
		return filesys.ConfirmedDir(resolved), "", nil
	}
	return filesys.ConfirmedDir(filepath.Dir(resolved)), filepath.Base(resolved), nil
}

func (r rootFS) Glob(pattern string) ([]string, error) {
	name, err := r.name(pattern)
	if err != nil {
		return nil, err
	}
	matches, err := fs.Glob(r.root.FS(), filepath.ToSlash(name))
	if err != nil {
		return nil, err
	}
	for i, m := range matches {
		matches[i] = filepath.Join(r.dir, filepath.FromSlash(m))
	}
	if !filesys.IsHiddenFilePath(pattern) {
		matches = filesys.RemoveHiddenFiles(matches)
	}
	return matches, nil
}

func (r rootFS) Walk(p string, fn filepath.WalkFunc) error {
	name, err := r.name(p)
	if err != nil {
		return err
	}
	return fs.WalkDir(r.root.FS(), filepath.ToSlash(name), func(q string, d fs.DirEntry, err error) error {
		var info fs.FileInfo
		if d != nil && err == nil {
			info, err = d.Info()
		}
		return fn(filepath.Join(r.dir, filepath.FromSlash(q)), info, r.fail(q, err))
	})
}
