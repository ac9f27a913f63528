package resource

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBuildDirReadsStayInside: every way out of the build dir through a
// symlink is refused with the field and the path named, symlinks that stay
// inside keep working, and a missing file says which one.
func TestBuildDirReadsStayInside(t *testing.T) {
	outside := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("hunter2\n"), 0o644))
	dir := filepath.Join(t.TempDir(), "build")
	for name, content := range map[string]string{"image/tag": "1.2.3\n", "other/tag": "4.5.6\n"} {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
	links := map[string]string{
		"abs-out":        filepath.Join(outside, "secret"),
		"rel-out":        "../../" + filepath.Base(outside) + "/secret",
		"dir-out":        outside,
		"out-and-back":   "../build/image/tag", // leaves, even if only to come back
		"abs-inside":     filepath.Join(dir, "image", "tag"),
		"image/sibling":  "../other/tag",
		"linked-dir":     "other",
		"image/loop":     "loop",
		"image/dangling": "nothing-here",
	}
	for name, target := range links {
		require.NoError(t, os.Symlink(target, filepath.Join(dir, name)))
	}
	in := Input{Dir: dir}
	tests := []struct {
		rel, want, err string
	}{
		{"image/tag", "1.2.3", ""},
		{"./image//tag", "1.2.3", ""},
		{"image/sibling", "4.5.6", ""},
		{"linked-dir/tag", "4.5.6", ""},
		{"abs-out", "", "params.tag_file: abs-out is, or passes through, a symlink that leaves the build dir"},
		{"rel-out", "", "params.tag_file: rel-out is, or passes through, a symlink that leaves the build dir"},
		{"dir-out/secret", "", "params.tag_file: dir-out/secret is, or passes through, a symlink that leaves the build dir"},
		{"out-and-back", "", "leaves the build dir"},
		{"abs-inside", "", "leaves the build dir"}, // an absolute symlink is never followed
		{"image/missing", "", "params.tag_file: image/missing does not exist in the build dir"},
		{"image/dangling", "", "does not exist in the build dir"},
		{"image/loop", "", "params.tag_file image/loop:"},
		{"image", "", "params.tag_file image:"},
	}
	for _, tt := range tests {
		t.Run(tt.rel, func(t *testing.T) {
			v, err := in.ReadParamFile("params.tag_file", tt.rel)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				require.True(t, IsConfigError(err), "a config error: %v", err)
				require.NotContains(t, err.Error(), "hunter2")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, v)
		})
	}
}

// TestEscapesRecognisesOSRoot pins the text of os.Root's unexported
// escape error, which Escapes matches.
func TestEscapesRecognisesOSRoot(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Symlink("/etc/hostname", filepath.Join(dir, "out")))
	root, err := os.OpenRoot(dir)
	require.NoError(t, err)
	defer root.Close()
	_, err = root.ReadFile("out")
	require.True(t, Escapes(err), "os.Root's refusal: %v", err)
	_, err = root.ReadFile("missing")
	require.False(t, Escapes(err))
	require.False(t, Escapes(nil))
}

func TestParamPath(t *testing.T) {
	for rel, want := range map[string]string{"a/b": "a/b", "./a/../b/": "b", ".": "."} {
		got, err := ParamPath("params.path", rel)
		require.NoError(t, err, rel)
		require.Equal(t, want, got, rel)
	}
	for rel, want := range map[string]string{"": "params.path is empty", "/etc": "must be relative", "a/../../b": "leaves the build dir", "..": "leaves the build dir"} {
		_, err := ParamPath("params.path", rel)
		require.ErrorContains(t, err, want, rel)
		require.True(t, IsConfigError(err))
	}
}
