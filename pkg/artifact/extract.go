package artifact

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// maxHeaderBytes bounds what the tar headers themselves may inflate to
// beside MaxSize of content: 1 KiB a header (more with long names).
const maxHeaderBytes = MaxEntries * 1536

// ExtractError is an artifact refused while extracting: an entry that would
// leave the dir, a link out, a type we do not write, or a bound crossed.
type ExtractError struct {
	Entry  string // the tar entry, or "" for the whole layer
	Reason string
}

func (e *ExtractError) Error() string {
	if e.Entry == "" {
		return "the artifact's content " + e.Reason
	}
	return fmt.Sprintf("the artifact's entry %q %s", e.Entry, e.Reason)
}

// extract unpacks the gzip tar r into dir, which it creates, writing only
// through an os.Root of dir: no entry is written outside it, whatever its
// name or the links before it. Absolute names and names with a ".."
// element are refused, as are hard links, devices and symlinks whose
// target is absolute or climbs out of dir; a symlink inside dir is kept,
// and no entry is written through one.
// At most MaxSize bytes of content and MaxEntries entries are written, and
// the stream may inflate to at most that plus its headers: past any bound
// it stops with an *ExtractError. It returns the files written.
func extract(r io.Reader, dir string) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, err
	}
	defer root.Close()
	zr, err := gzip.NewReader(r)
	if err != nil {
		return 0, &ExtractError{Reason: fmt.Sprintf("is not gzip-compressed: %v", err)}
	}
	inflated := &boundedReader{r: zr, left: MaxSize + maxHeaderBytes}
	tr := tar.NewReader(inflated)
	var files, entries int
	var size int64
	real := map[string]bool{} // dirs known not to be symlinks
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return files, inflated.explain(err, "is not a valid tar")
		}
		if entries++; entries > MaxEntries {
			return files, &ExtractError{Reason: fmt.Sprintf("holds more than %d entries", MaxEntries)}
		}
		name, err := entryName(h.Name)
		if err != nil {
			return files, err
		}
		if name == "." {
			continue
		}
		if err := realParents(root, name, h.Name, real); err != nil {
			return files, err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return files, writeError(h.Name, err)
			}
		case tar.TypeReg:
			if h.Size < 0 || size+h.Size > MaxSize {
				return files, &ExtractError{Entry: h.Name, Reason: fmt.Sprintf("would take the content past %d MiB", MaxSize>>20)}
			}
			size += h.Size
			if err := writeFile(root, name, h, tr); err != nil {
				return files, inflated.explain(err, "")
			}
			files++
		case tar.TypeSymlink:
			if err := symlink(root, name, h); err != nil {
				return files, err
			}
			clear(real) // the link may replace a dir checked before
		default:
			return files, &ExtractError{Entry: h.Name, Reason: fmt.Sprintf("is of tar type %q, which an artifact may not hold (files, dirs and symlinks only)", string(h.Typeflag))}
		}
	}
	// Read to the end: a stream that goes on inflating after the tar ends
	// is refused, and the layer's digest is only checked at its end.
	if _, err := io.Copy(io.Discard, inflated); err != nil {
		return files, inflated.explain(err, "does not end as a gzip stream should")
	}
	return files, nil
}

// entryName checks a tar entry name and returns it cleaned, in slash form.
func entryName(raw string) (string, error) {
	n := strings.TrimSuffix(raw, "/")
	switch {
	case raw == "":
		return "", &ExtractError{Entry: raw, Reason: "has no name"}
	case strings.HasPrefix(raw, "/") || filepath.IsAbs(raw):
		return "", &ExtractError{Entry: raw, Reason: "is absolute: refused"}
	case strings.Contains(raw, `\`):
		return "", &ExtractError{Entry: raw, Reason: "holds a backslash: refused"}
	case strings.ContainsRune(raw, 0):
		return "", &ExtractError{Entry: raw, Reason: "holds a NUL byte: refused"}
	}
	for _, el := range strings.Split(n, "/") {
		if el == ".." {
			return "", &ExtractError{Entry: raw, Reason: "climbs out with \"..\": refused"}
		}
	}
	return path.Clean(n), nil
}

// realParents refuses an entry whose parent dirs include a symlink: no
// entry is written through a link, so a link's target, checked where the
// link is written, is checked where it really is.
func realParents(root *os.Root, name, raw string, real map[string]bool) error {
	for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
		if real[dir] {
			return nil // and so are its parents
		}
		info, err := root.Lstat(filepath.FromSlash(dir))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return writeError(raw, err)
		case info.Mode()&os.ModeSymlink != 0:
			return &ExtractError{Entry: raw, Reason: fmt.Sprintf("would be written through the symlink %q: refused", dir)}
		}
		real[dir] = true
	}
	return nil
}

func writeFile(root *os.Root, name string, h *tar.Header, r io.Reader) error {
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(filepath.FromSlash(dir), 0o755); err != nil {
			return writeError(h.Name, err)
		}
	}
	mode := os.FileMode(0o644)
	if h.Mode&0o111 != 0 {
		mode = 0o755
	}
	// An earlier symlink of that name is replaced, never written through.
	if info, err := root.Lstat(filepath.FromSlash(name)); err == nil && info.Mode()&os.ModeSymlink != 0 {
		if err := root.Remove(filepath.FromSlash(name)); err != nil {
			return writeError(h.Name, err)
		}
	}
	f, err := root.OpenFile(filepath.FromSlash(name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return writeError(h.Name, err)
	}
	n, err := io.Copy(f, io.LimitReader(r, h.Size))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if n != h.Size {
		return &ExtractError{Entry: h.Name, Reason: fmt.Sprintf("ends after %d of its %d bytes", n, h.Size)}
	}
	return nil
}

// symlink writes a link whose target stays inside the dir.
func symlink(root *os.Root, name string, h *tar.Header) error {
	target := h.Linkname
	if target == "" || path.IsAbs(target) || filepath.IsAbs(target) || strings.Contains(target, `\`) {
		return &ExtractError{Entry: h.Name, Reason: fmt.Sprintf("is a symlink to %q, outside the artifact: refused", target)}
	}
	resolved := path.Join(path.Dir(name), target)
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		return &ExtractError{Entry: h.Name, Reason: fmt.Sprintf("is a symlink to %q, outside the artifact: refused", target)}
	}
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(filepath.FromSlash(dir), 0o755); err != nil {
			return writeError(h.Name, err)
		}
	}
	_ = root.Remove(filepath.FromSlash(name))
	if err := root.Symlink(target, filepath.FromSlash(name)); err != nil {
		return writeError(h.Name, err)
	}
	return nil
}

// writeError explains an os.Root refusal: the entry's path passes through a
// symlink that leads out.
func writeError(entry string, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) && pe.Err.Error() == "path escapes from parent" {
		return &ExtractError{Entry: entry, Reason: "would be written through a symlink that leads out of the artifact: refused"}
	}
	return fmt.Errorf("write the artifact's entry %q: %w", entry, err)
}

// boundedReader fails once more than left bytes were read through it.
type boundedReader struct {
	r    io.Reader
	left int64
	over bool
}

var errInflates = errors.New("inflates past its bound")

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One more byte says whether the stream really goes on.
		var one [1]byte
		if n, err := b.r.Read(one[:]); n > 0 {
			b.over = true
			return 0, errInflates
		} else if err != nil {
			return 0, err
		}
		return 0, nil
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

// explain turns a read error into what happened: the bound crossed, or the
// stream's own error.
func (b *boundedReader) explain(err error, what string) error {
	if b.over || errors.Is(err, errInflates) {
		return &ExtractError{Reason: fmt.Sprintf("inflates past %d MiB: refused", (MaxSize+maxHeaderBytes)>>20)}
	}
	var ee *ExtractError
	if errors.As(err, &ee) || what == "" {
		return err
	}
	return &ExtractError{Reason: fmt.Sprintf("%s: %v", what, err)}
}
