package artifact_test

import (
	"archive/tar"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/require"

	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
	"github.com/gitops-resource/gitops-resource/pkg/artifact"
)

// fluxImage is an artifact in Flux's format whose one layer is data, as
// hostile as the test makes it.
func fluxImage(t *testing.T, data []byte) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, artifact.ConfigMediaType)
	img = mutate.Annotations(img, map[string]string{"org.opencontainers.image.revision": "main@sha1:abc"}).(v1.Image)
	img, err := mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(data, artifact.ContentMediaType)})
	require.NoError(t, err)
	return img
}

func file(name, body string) tarEntry {
	return tarEntry{h: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}, body: body}
}

func link(name, target string, typ byte) tarEntry {
	return tarEntry{h: tar.Header{Name: name, Typeflag: typ, Linkname: target, Mode: 0o777}}
}

// TestGetRefusesHostileArtifacts: each artifact tries to write outside the
// get dir, or to inflate without end; in refuses it with an error naming
// the entry and the reason, and nothing is written outside content/.
func TestGetRefusesHostileArtifacts(t *testing.T) {
	t.Parallel()
	r := newRegistry(t, "", "")
	repo := r.repo("acme/hostile")
	tests := []struct {
		name  string
		layer func(t *testing.T) []byte
		want  []string
	}{
		{"dot-dot", func(t *testing.T) []byte {
			return tarGz(t, []tarEntry{file("ok.yaml", "a"), file("../escaped", "x")}, 0)
		},
			[]string{`entry "../escaped" climbs out with ".."`}},
		{"dot-dot inside", func(t *testing.T) []byte { return tarGz(t, []tarEntry{file("a/../../escaped", "x")}, 0) },
			[]string{`entry "a/../../escaped" climbs out`}},
		{"absolute", func(t *testing.T) []byte { return tarGz(t, []tarEntry{file("/tmp/escaped", "x")}, 0) },
			[]string{`entry "/tmp/escaped" is absolute`}},
		{"symlink out", func(t *testing.T) []byte {
			return tarGz(t, []tarEntry{link("out", "../../..", tar.TypeSymlink), file("out/escaped", "x")}, 0)
		}, []string{`entry "out" is a symlink to "../../..", outside the artifact`}},
		{"symlink out through a symlink", func(t *testing.T) []byte {
			return tarGz(t, []tarEntry{link("a", ".", tar.TypeSymlink), link("a/escaped", "../escaped-target", tar.TypeSymlink)}, 0)
		}, []string{`entry "a/escaped" would be written through the symlink "a"`}},
		{"file through a symlinked dir", func(t *testing.T) []byte {
			return tarGz(t, []tarEntry{file("sub/x", "x"), link("d", "sub", tar.TypeSymlink), file("d/escaped", "x")}, 0)
		}, []string{`entry "d/escaped" would be written through the symlink "d"`}},
		{"absolute symlink", func(t *testing.T) []byte {
			return tarGz(t, []tarEntry{link("passwd", "/etc/passwd", tar.TypeSymlink)}, 0)
		},
			[]string{`entry "passwd" is a symlink to "/etc/passwd"`}},
		{"hard link", func(t *testing.T) []byte { return tarGz(t, []tarEntry{link("h", "/etc/passwd", tar.TypeLink)}, 0) },
			[]string{`entry "h" is of tar type "1"`}},
		{"device", func(t *testing.T) []byte {
			return tarGz(t, []tarEntry{{h: tar.Header{Name: "null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}}}, 0)
		}, []string{`entry "null" is of tar type "3"`}},
		{"entry claiming a terabyte", func(t *testing.T) []byte {
			return gz(t, headerOnly(t, tar.Header{Name: "huge", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1 << 40}), 1<<20)
		}, []string{`entry "huge" would take the content past 100 MiB`}},
		{"stream inflating without end", func(t *testing.T) []byte { return tarGz(t, []tarEntry{file("ok.yaml", "a")}, 300<<20) },
			[]string{"content inflates past", "refused"}},
		{"not gzip", func(t *testing.T) []byte { return []byte("plain text, not a tar") },
			[]string{"content is not gzip-compressed"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			version := pushLayer(t, r, repo, fmt.Sprintf("t%d", i), tt.layer(t))
			base := t.TempDir()
			get := filepath.Join(base, "get")
			res := rt.Run(t, "in", get, map[string]any{"source": r.source(repo, nil), "version": version}, nil)
			res.Fails(t, tt.want...)
			entries, err := os.ReadDir(base)
			require.NoError(t, err)
			require.Len(t, entries, 1, "nothing beside the get dir")
			_, err = os.Lstat(filepath.Join(get, "escaped"))
			require.True(t, os.IsNotExist(err), "nothing beside content/")
		})
	}
}

// TestGetKeepsSymlinksInside: a symlink whose target stays in the content
// is written as it is, and a later file of the same name replaces the
// link instead of writing through it.
func TestGetKeepsSymlinksInside(t *testing.T) {
	t.Parallel()
	r := newRegistry(t, "", "")
	repo := r.repo("acme/links")
	layer := tarGz(t, []tarEntry{file("base/a.yaml", "a"), link("overlay/a.yaml", "../base/a.yaml", tar.TypeSymlink),
		link("b", "base/a.yaml", tar.TypeSymlink), file("b", "b's own")}, 0)
	version := pushLayer(t, r, repo, "1", layer)
	get := t.TempDir()
	rt.Run(t, "in", get, map[string]any{"source": r.source(repo, nil), "version": version}, nil).OK(t, nil)
	target, err := os.Readlink(filepath.Join(get, "content", "overlay", "a.yaml"))
	require.NoError(t, err)
	require.Equal(t, "../base/a.yaml", target)
	require.Equal(t, "a", readFile(t, filepath.Join(get, "content", "base", "a.yaml")))
	require.Equal(t, "b's own", readFile(t, filepath.Join(get, "content", "b")))
}
