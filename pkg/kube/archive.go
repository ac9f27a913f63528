package kube

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// maxArchiveBytes bounds what an archive may unpack to.
const maxArchiveBytes = 256 << 20

// isArchive reports whether path names a tarball of manifests.
func isArchive(path string) bool {
	p := strings.ToLower(path)
	return strings.HasSuffix(p, ".tgz") || strings.HasSuffix(p, ".tar.gz") || strings.HasSuffix(p, ".tar")
}

// loadArchive unpacks a .tar, .tgz or .tar.gz into a temporary dir (entries
// that would leave it, links and devices are refused) and loads that dir.
func loadArchive(path string) ([]*unstructured.Unstructured, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if !strings.HasSuffix(strings.ToLower(path), ".tar") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: not gzip: %w", filepath.Base(path), err)
		}
		defer gz.Close()
		r = gz
	}
	dir, err := os.MkdirTemp("", "gitops-resource-manifests-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	tr := tar.NewReader(r)
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
		name := filepath.Clean(filepath.FromSlash(h.Name))
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, ".."+string(filepath.Separator)) {
			return nil, fmt.Errorf("%s: entry %q leaves the archive", filepath.Base(path), h.Name)
		}
		target := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return nil, err
			}
		case tar.TypeReg:
			total += h.Size
			if total > maxArchiveBytes {
				return nil, fmt.Errorf("%s: unpacks to more than %d MiB", filepath.Base(path), maxArchiveBytes>>20)
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return nil, err
			}
			out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
			if err != nil {
				return nil, err
			}
			_, err = io.Copy(out, io.LimitReader(tr, h.Size))
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, err
			}
		}
	}
	return Load(dir)
}
