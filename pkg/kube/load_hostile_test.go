package kube

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/pkg/resource"
)

func openRoot(t *testing.T, dir string) *os.Root {
	t.Helper()
	root, err := os.OpenRoot(dir)
	require.NoError(t, err)
	t.Cleanup(func() { root.Close() })
	return root
}

func configMap(name string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + name + "}\ndata: {k: v}\n"
}

// hostileBuildDir is a build dir next to an outside dir holding a secret
// manifest and a kustomization, reached from inside by every kind of
// symlink and path.
func hostileBuildDir(t *testing.T) (build, outside string) {
	t.Helper()
	parent := t.TempDir()
	outside, build = filepath.Join(parent, "outside"), filepath.Join(parent, "build")
	files := map[string]string{
		"outside/secret.yaml":                    configMap("hunter2"),
		"outside/base/kustomization.yaml":        "resources: [secret.yaml]\n",
		"outside/base/secret.yaml":               configMap("hunter2"),
		"build/shared/cm.yaml":                   configMap("shared"),
		"build/dir-with-link/ok.yaml":            configMap("ok"),
		"build/inside/ok.yaml":                   configMap("ok"),
		"build/base/kustomization.yaml":          "resources: [cm.yaml]\n",
		"build/base/cm.yaml":                     configMap("base"),
		"build/overlay/kustomization.yaml":       "resources: [../base]\nnamePrefix: prod-\n",
		"build/k-file-out/kustomization.yaml":    "resources: [cm.yaml]\n",
		"build/k-dotdot/kustomization.yaml":      "resources: [../../outside/base]\n",
		"build/k-abs/kustomization.yaml":         "resources: [" + filepath.Join(parent, "outside", "base") + "]\n",
		"build/k-base-link/kustomization.yaml":   "resources: [base]\n",
		"build/k-inside-link/kustomization.yaml": "resources: [base]\n",
	}
	for name, content := range files {
		p := filepath.Join(parent, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	for link, target := range map[string]string{
		"build/dir-with-link/evil.yaml": filepath.Join(outside, "secret.yaml"),
		"build/inside/shared.yaml":      "../shared/cm.yaml",
		"build/file-out.yaml":           "../outside/secret.yaml",
		"build/dir-out":                 outside,
		"build/k-file-out/cm.yaml":      filepath.Join(outside, "secret.yaml"),
		"build/k-base-link/base":        "../../outside/base",
		"build/k-inside-link/base":      "../base",
	} {
		require.NoError(t, os.Symlink(target, filepath.Join(parent, link)))
	}
	return build, outside
}

// TestLoadReadsNothingOutsideTheRoot: a params.path file, dir, kustomization
// or base that is, or holds, a symlink out of the build dir fails the load
// naming the path, without a byte of the outside file in the error; ..
// and absolute paths in a kustomization are refused too; symlinks and
// bases inside the build dir keep working.
func TestLoadReadsNothingOutsideTheRoot(t *testing.T) {
	build, _ := hostileBuildDir(t)
	root := openRoot(t, build)
	refused := []struct{ name, want string }{
		{"dir-with-link", "dir-with-link/evil.yaml is, or passes through, a symlink that leaves the build dir"},
		{"file-out.yaml", "file-out.yaml is, or passes through, a symlink that leaves the build dir"},
		{"dir-out", "dir-out is, or passes through, a symlink that leaves the build dir"},
		{"k-file-out", "k-file-out/cm.yaml is, or passes through, a symlink that leads outside"},
		{"k-dotdot", "outside/base is outside " + build},
		{"k-abs", "outside/base is outside " + build},
		{"k-base-link", "k-base-link/base is, or passes through, a symlink that leads outside"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := Load(root, tt.name)
			require.Error(t, err)
			require.Empty(t, objs)
			err = resource.ParamError("params.path", tt.name, err)
			require.ErrorContains(t, err, tt.want)
			require.ErrorContains(t, err, "params.path")
			require.NotContains(t, err.Error(), "hunter2")
		})
	}
	inside := []struct {
		name  string
		names []string
	}{
		{"inside", []string{"ok", "shared"}},
		{"overlay", []string{"prod-base"}},
		{"k-inside-link", []string{"base"}},
	}
	for _, tt := range inside {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := Load(root, tt.name)
			require.NoError(t, err)
			var names []string
			for _, o := range objs {
				names = append(names, o.GetName())
			}
			require.Equal(t, tt.names, names)
		})
	}
}

// TestArchiveLinksStayInside: a tarball's symlink or hard link leading out
// of its extraction dir is refused by name; links inside it work; a
// kustomization in it cannot reach out either.
func TestArchiveLinksStayInside(t *testing.T) {
	build, outside := hostileBuildDir(t)
	root := openRoot(t, build)
	reg := func(name, content string) tarEntry {
		return tarEntry{&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(content))}, content}
	}
	link := func(typ byte, name, target string) tarEntry {
		return tarEntry{&tar.Header{Name: name, Typeflag: typ, Linkname: target, Mode: 0o777}, ""}
	}
	tests := []struct {
		name    string
		entries []tarEntry
		err     string
		names   []string
	}{
		{"absolute symlink", []tarEntry{link(tar.TypeSymlink, "m/evil.yaml", filepath.Join(outside, "secret.yaml"))}, `entry "m/evil.yaml": links to "` + outside, nil},
		{"symlink up", []tarEntry{link(tar.TypeSymlink, "m/evil.yaml", "../../outside/secret.yaml")}, `entry "m/evil.yaml": links to "../../outside/secret.yaml", outside the archive`, nil},
		{"hard link up", []tarEntry{link(tar.TypeLink, "m/evil.yaml", "../outside/secret.yaml")}, `entry "m/evil.yaml": links to "../outside/secret.yaml", outside the archive`, nil},
		{"a symlink to the parent", []tarEntry{link(tar.TypeSymlink, "up", "..")}, `entry "up": links to "..", outside the archive`, nil},
		{"a name with ..", []tarEntry{link(tar.TypeSymlink, "m", "."), reg("m/../../x.yaml", configMap("x"))}, `entry "m/../../x.yaml" leaves the archive`, nil},
		{"kustomization reaching out", []tarEntry{reg("kustomization.yaml", "resources: [../../outside/base]\n")}, "is outside", nil},
		{"links inside", []tarEntry{
			reg("m/a.yaml", configMap("a")),
			link(tar.TypeSymlink, "m/sub/b.yaml", "../a.yaml"),
			link(tar.TypeLink, "m/c.yaml", "m/a.yaml"),
		}, "", []string{"a", "a", "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := filepath.Base(t.Name()) + ".tgz"
			writeEntries(t, filepath.Join(build, name), tt.entries)
			objs, err := Load(root, name)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				require.NotContains(t, err.Error(), "hunter2")
				return
			}
			require.NoError(t, err)
			var names []string
			for _, o := range objs {
				names = append(names, o.GetName())
			}
			require.ElementsMatch(t, tt.names, names)
		})
	}
	require.NoFileExists(t, filepath.Join(filepath.Dir(build), "x.yaml"))
}

type tarEntry struct {
	h       *tar.Header
	content string
}

// writeEntries writes the entries as a gzipped tar at path.
func writeEntries(t *testing.T, path string, entries []tarEntry) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		require.NoError(t, tw.WriteHeader(e.h))
		_, err := tw.Write([]byte(e.content))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, zw.Close())
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
}
