package cluster_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestDirectAppliesNothingLinkedOutsideTheBuildDir: a put whose
// params.path is, or holds, a symlink to a manifest outside the build dir
// (a file in a dir, the path itself, a kustomization's base, a tarball's
// entry) fails naming the path before anything is applied, and nothing of
// the outside manifest reaches the output; a symlink inside the build dir
// still works.
func TestDirectAppliesNothingLinkedOutsideTheBuildDir(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	outside := t.TempDir()
	stolen := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stolen\ndata: {token: s3cr3t-from-the-worker}\n"
	require.NoError(t, os.WriteFile(filepath.Join(outside, "stolen.yaml"), []byte(stolen), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(outside, "base"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(outside, "base", "kustomization.yaml"), []byte("resources: [stolen.yaml]\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(outside, "base", "stolen.yaml"), []byte(stolen), 0o644))

	tests := []struct {
		name  string
		files map[string]string
		links map[string]string
		path  string
		want  string
	}{
		{"a file in the dir", map[string]string{"m/ok.yaml": configMap("ok")}, map[string]string{"m/z.yaml": filepath.Join(outside, "stolen.yaml")},
			"m", "params.path: m/z.yaml is, or passes through, a symlink that leaves the build dir"},
		{"the path itself", nil, map[string]string{"app.yaml": filepath.Join(outside, "stolen.yaml")},
			"app.yaml", "params.path: app.yaml is, or passes through, a symlink that leaves the build dir"},
		{"a kustomization's base", map[string]string{"k/kustomization.yaml": "resources: [ok.yaml, base]\n", "k/ok.yaml": configMap("ok")}, map[string]string{"k/base": filepath.Join(outside, "base")},
			"k", "k/base is, or passes through, a symlink that leads outside"},
		{"a tarball's entry", nil, nil, "m.tgz", `m.tgz: entry "m/z.yaml": links to "` + filepath.Join(outside, "stolen.yaml") + `", outside the archive`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ns := env.Namespace(t)
			dir := build(t, tt.files)
			for link, target := range tt.links {
				require.NoError(t, os.Symlink(target, filepath.Join(dir, link)))
			}
			if tt.path == "m.tgz" {
				writeLinkTarball(t, filepath.Join(dir, "m.tgz"), configMap("ok"), filepath.Join(outside, "stolen.yaml"))
			}
			res := put(t, env, ns, dir, map[string]any{"path": tt.path})
			res.Fails(t, tt.want)
			require.NotContains(t, res.Stderr, "s3cr3t")
			for _, name := range []string{"ok", "stolen"} {
				_, err := env.Client().CoreV1().ConfigMaps(ns).Get(t.Context(), name, metav1.GetOptions{})
				require.True(t, apierrors.IsNotFound(err), "ConfigMap %s must not be applied: %v", name, err)
			}
		})
	}

	t.Run("a symlink inside the build dir", func(t *testing.T) {
		t.Parallel()
		ns := env.Namespace(t)
		dir := build(t, map[string]string{"shared/cm.yaml": configMap("shared"), "m/ok.yaml": configMap("ok")})
		require.NoError(t, os.Symlink("../shared/cm.yaml", filepath.Join(dir, "m", "shared.yaml")))
		put(t, env, ns, dir, map[string]any{"path": "m"}).OK(t, nil)
		for _, name := range []string{"ok", "shared"} {
			_, err := env.Client().CoreV1().ConfigMaps(ns).Get(t.Context(), name, metav1.GetOptions{})
			require.NoError(t, err, name)
		}
	})
}

// writeLinkTarball writes a .tgz holding m/ok.yaml and m/z.yaml, a symlink
// to target.
func writeLinkTarball(t *testing.T, path, ok, target string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "m/ok.yaml", Mode: 0o644, Size: int64(len(ok)), Typeflag: tar.TypeReg}))
	_, err := tw.Write([]byte(ok))
	require.NoError(t, err)
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "m/z.yaml", Mode: 0o777, Linkname: target, Typeflag: tar.TypeSymlink}))
	require.NoError(t, tw.Close())
	require.NoError(t, zw.Close())
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
}
