package artifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The media types and annotations of Flux's artifacts (fluxcd/pkg/oci).
const (
	ConfigMediaType  types.MediaType = "application/vnd.cncf.flux.config.v1+json"
	ContentMediaType types.MediaType = "application/vnd.cncf.flux.content.v1.tar+gzip"

	SourceAnnotation   = "org.opencontainers.image.source"
	RevisionAnnotation = "org.opencontainers.image.revision"
	CreatedAnnotation  = "org.opencontainers.image.created"
)

// Bounds of an artifact, the same on both sides: what out would not push, in
// does not extract. MaxSize is also Flux's default limit on what it
// untars (fluxcd/pkg/tar DefaultMaxUntarSize).
const (
	MaxSize    = 100 << 20 // bytes of file content
	MaxEntries = 100_000   // files, dirs and links
)

// gitDir is left out of a pack at any depth, dir or file: a git get's .git
// (and this resource's own files in it) would make every pack differ.
const gitDir = ".git"

// Metadata are the manifest's annotations.
type Metadata struct {
	Source, Revision, Created string
}

func (m Metadata) annotations() map[string]string {
	return map[string]string{SourceAnnotation: m.Source, RevisionAnnotation: m.Revision, CreatedAnnotation: m.Created}
}

// packStats says what a pack holds, for the log.
type packStats struct {
	Files, Dirs int
	Bytes       int64
	Skipped     []string // symlinks and other non-regular entries
}

// entry is one file or dir to pack, named relative to the packed dir.
type entry struct {
	name string
	dir  bool
	exec bool
	data func() ([]byte, error)
}

// packDir lists dir, under root, the way Flux's Build walks it: lexical
// order, the dir itself first as ".", regular files and dirs only (symlinks
// are skipped, as Flux skips them), any .git left out.
func packDir(root *os.Root, dir string) ([]entry, packStats, error) {
	var entries []entry
	var st packStats
	top := filepath.ToSlash(dir)
	err := fs.WalkDir(root.FS(), top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := "."
		if p != top {
			rel = p[len(top)+1:]
			if top == "." {
				rel = p
			}
		}
		if p != top && d.Name() == gitDir {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		switch {
		case d.IsDir():
			st.Dirs++
			entries = append(entries, entry{name: rel, dir: true})
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			st.Files++
			st.Bytes += info.Size()
			if st.Bytes > MaxSize {
				return fmt.Errorf("%s holds more than %d MiB of files: more than an artifact may hold", dir, MaxSize>>20)
			}
			name := filepath.FromSlash(p)
			entries = append(entries, entry{name: rel, exec: info.Mode().Perm()&0o111 != 0,
				data: func() ([]byte, error) { return root.ReadFile(name) }})
		default:
			st.Skipped = append(st.Skipped, rel)
		}
		if len(entries) > MaxEntries {
			return fmt.Errorf("%s holds more than %d files and dirs: more than an artifact may hold", dir, MaxEntries)
		}
		return nil
	})
	return entries, st, err
}

// singleFile is the pack of one file (kustomize build's output).
func singleFile(name string, data []byte) []entry {
	return []entry{{name: ".", dir: true}, {name: name, data: func() ([]byte, error) { return data, nil }}}
}

// tarGzip writes entries as Flux's Build does: a gzip (default level, empty
// gzip header) of a tar whose headers carry the name, type, mode and size
// only: no owner, no times. Modes are normalised (dirs and executables 0755,
// files 0644), so the same files give the same bytes whatever the checkout's
// umask, mtimes or listing order.
func tarGzip(entries []entry) ([]byte, error) {
	var buf bytes.Buffer
	gw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: 0o644}
		var data []byte
		switch {
		case e.dir:
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		default:
			var err error
			if data, err = e.data(); err != nil {
				return nil, err
			}
			h.Size = int64(len(data))
			if e.exec {
				h.Mode = 0o755
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("tar %s: %w", e.name, err)
		}
		if _, err := tw.Write(data); err != nil {
			return nil, fmt.Errorf("tar %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// image assembles the artifact as Flux's Push does: an OCI image manifest
// of config media type ConfigMediaType, one ContentMediaType layer, and the
// source, revision and created annotations on the manifest.
func image(layerData []byte, meta Metadata) (v1.Image, error) {
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerData)), nil
	}, tarball.WithMediaType(ContentMediaType))
	if err != nil {
		return nil, fmt.Errorf("make the content layer: %w", err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, ConfigMediaType)
	img = mutate.Annotations(img, meta.annotations()).(v1.Image)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer})
	if err != nil {
		return nil, fmt.Errorf("append the content layer: %w", err)
	}
	return img, nil
}
