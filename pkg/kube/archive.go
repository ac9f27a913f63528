package kube

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
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

// loadArchive unpacks the .tar, .tgz or .tar.gz name (under root) into a
// temporary dir and loads that dir. It is written and read through an
// os.Root of that dir, so no entry lands or resolves outside it: an entry
// whose name or link target leaves the archive is refused, symlinks and
// hard links inside it are kept, devices and FIFOs are left out.
func loadArchive(root *os.Root, name string) ([]*unstructured.Unstructured, error) {
	base := filepath.Base(name)
	f, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if !strings.HasSuffix(strings.ToLower(name), ".tar") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: not gzip: %w", base, err)
		}
		defer gz.Close()
		r = gz
	}
	dir, err := os.MkdirTemp("", "gitops-resource-manifests-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	tr := tar.NewReader(r)
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", base, err)
		}
		entry, ok := inArchive(h.Name)
		if !ok {
			return nil, fmt.Errorf("%s: entry %q leaves the archive", base, h.Name)
		}
		if err := unpack(out, tr, h, entry, &total); err != nil {
			return nil, fmt.Errorf("%s: entry %q: %w", base, h.Name, err)
		}
	}
	return Load(out, ".")
}

// inArchive cleans a slash-separated name inside an archive, and reports
// false for one that is absolute or climbs out with "..".
func inArchive(name string) (string, bool) {
	clean := path.Clean(name)
	if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", false
	}
	return filepath.FromSlash(clean), true
}

// unpack writes one entry, named entry, under out; total counts the bytes
// unpacked so far.
func unpack(out *os.Root, tr *tar.Reader, h *tar.Header, entry string, total *int64) error {
	switch h.Typeflag {
	case tar.TypeDir:
		return out.MkdirAll(entry, 0o755)
	case tar.TypeSymlink:
		// The target is relative to the link's dir; os.Root refuses any
		// that still resolves outside when the dir is read.
		if _, ok := inArchive(path.Join(path.Dir(path.Clean(h.Name)), h.Linkname)); !ok || path.IsAbs(h.Linkname) {
			return fmt.Errorf("links to %q, outside the archive", h.Linkname)
		}
		if err := out.MkdirAll(filepath.Dir(entry), 0o755); err != nil {
			return err
		}
		return out.Symlink(h.Linkname, entry)
	case tar.TypeLink:
		target, ok := inArchive(h.Linkname)
		if !ok {
			return fmt.Errorf("links to %q, outside the archive", h.Linkname)
		}
		if err := out.MkdirAll(filepath.Dir(entry), 0o755); err != nil {
			return err
		}
		return out.Link(target, entry)
	case tar.TypeReg:
		if *total += h.Size; *total > maxArchiveBytes {
			return fmt.Errorf("the archive unpacks to more than %d MiB", maxArchiveBytes>>20)
		}
		if err := out.MkdirAll(filepath.Dir(entry), 0o755); err != nil {
			return err
		}
		f, err := out.OpenFile(entry, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, io.LimitReader(tr, h.Size))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}
	return nil
}
