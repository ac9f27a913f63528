package kube

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// Tarball writes files (name → content) as a gzipped tar at path.
func writeTarball(t *testing.T, path string, files map[string]string, gz bool) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, content := range files {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}))
		_, err := tw.Write([]byte(content))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	data := buf.Bytes()
	if gz {
		var zb bytes.Buffer
		zw := gzip.NewWriter(&zb)
		_, err := zw.Write(data)
		require.NoError(t, err)
		require.NoError(t, zw.Close())
		data = zb.Bytes()
	}
	require.NoError(t, os.WriteFile(path, data, 0o644))
}

func TestLoadArchives(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"manifests/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
		"manifests/b.yml":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n",
		"README.md":        "ignored",
	}
	for name, gz := range map[string]bool{"m.tgz": true, "m.tar.gz": true, "m.tar": false} {
		writeTarball(t, filepath.Join(dir, name), files, gz)
		objs, err := Load(openRoot(t, dir), name)
		require.NoError(t, err, name)
		require.Len(t, objs, 2, name)
		require.Equal(t, "ConfigMap/a", Ref(objs[0]))
	}
	writeTarball(t, filepath.Join(dir, "evil.tgz"), map[string]string{"../../etc/x.yaml": "a: b"}, true)
	_, err := Load(openRoot(t, dir), "evil.tgz")
	require.ErrorContains(t, err, `entry "../../etc/x.yaml" leaves the archive`)
}

func TestLoadKustomization(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"kustomization.yaml": "resources: [cm.yaml]\nnamespace: team\ncommonLabels: {app: x}\n",
		"cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
		"other.yaml":         "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: not-listed}\n",
	} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
	objs, err := Load(openRoot(t, dir), ".")
	require.NoError(t, err)
	require.Len(t, objs, 1, "only what the kustomization lists")
	require.Equal(t, "ConfigMap/team/a", Ref(objs[0]))
	require.Equal(t, "x", objs[0].GetLabels()["app"])
}
