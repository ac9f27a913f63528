package kustomize

import (
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/kustomize/api/krusty"
)

// Files are the file names that make a dir a kustomization, in the order
// kustomize looks for them.
var Files = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// Is reports whether dir, under root, holds a kustomization.
func Is(root *os.Root, dir string) bool {
	for _, k := range Files {
		if info, err := root.Stat(filepath.Join(dir, k)); err == nil && info.Mode().IsRegular() {
			return true
		}
	}
	return false
}

// Build builds the kustomization in dir, under root, and returns the
// resources as a YAML stream, as `kustomize build` prints them.
func Build(root *os.Root, dir string) ([]byte, error) {
	fsys, err := newRootFS(root)
	if err != nil {
		return nil, fmt.Errorf("kustomize build: %w", err)
	}
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(fsys, filepath.Join(fsys.dir, dir))
	if err != nil {
		return nil, fmt.Errorf("kustomize build: %w", err)
	}
	data, err := m.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("kustomize build: %w", err)
	}
	return data, nil
}
