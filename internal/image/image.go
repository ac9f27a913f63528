// Package image assembles the resource image without Docker: the layout the
// Dockerfile's final stage produces (one binary hard-linked as
// /opt/resource/check, in and out, plus CA certificates), as an OCI image
// built with go-containerregistry.
package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Layout lists the paths of the image, as in the Dockerfile.
var Layout = struct{ Check, In, Out, CACerts string }{
	Check:   "opt/resource/check",
	In:      "opt/resource/in",
	Out:     "opt/resource/out",
	CACerts: "etc/ssl/certs/ca-certificates.crt",
}

// Build makes the image from the built binary and a CA bundle file.
func Build(binary, caCerts string) (v1.Image, error) {
	layer, err := Layer(binary, caCerts)
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "SSL_CERT_FILE=/" + Layout.CACerts}
	cfg.Config.WorkingDir = "/"
	return mutate.ConfigFile(img, cfg)
}

// Layer is the one layer: the binary once, two hard links to it, and the
// CA bundle. Timestamps are fixed so the digest depends only on content.
func Layer(binary, caCerts string) (v1.Layer, error) {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("read binary: %w", err)
	}
	certs, err := os.ReadFile(caCerts)
	if err != nil {
		return nil, fmt.Errorf("read CA certificates: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	dirs := []string{"etc/", "etc/ssl/", "etc/ssl/certs/", "opt/", "opt/resource/"}
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: epoch}); err != nil {
			return nil, err
		}
	}
	files := []struct {
		name string
		mode int64
		data []byte
	}{{Layout.CACerts, 0o644, certs}, {Layout.Check, 0o755, bin}}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: epoch}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	for _, link := range []string{Layout.In, Layout.Out} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeLink, Name: link, Linkname: Layout.Check, Mode: 0o755, ModTime: epoch}); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}
