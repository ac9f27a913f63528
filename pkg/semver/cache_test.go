package semver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSemverCacheEntryParse(t *testing.T) {
	t.Parallel()
	tip := strings.Repeat("ab", 20)
	for _, tt := range []struct {
		name, data, fails string
		want              cacheEntry
	}{
		{name: "a version", data: `{"tip":"` + tip + `","number":"1.2.3-rc.1"}`, want: cacheEntry{Tip: tip, Number: "1.2.3-rc.1"}},
		{name: "no version file", data: `{"tip":"` + tip + `","number":""}`, want: cacheEntry{Tip: tip}},
		{name: "not JSON", data: "1.2.3", fails: "not a cache entry"},
		{name: "unknown field", data: `{"tip":"` + tip + `","number":"1.2.3","password":"x"}`, fails: "unknown field"},
		{name: "two values", data: `{"tip":"` + tip + `","number":"1.2.3"} {}`, fails: "data after the entry"},
		{name: "short tip", data: `{"tip":"abc","number":"1.2.3"}`, fails: "not a commit SHA"},
		{name: "upper-case tip", data: `{"tip":"` + strings.ToUpper(tip) + `","number":"1.2.3"}`, fails: "not a commit SHA"},
		{name: "loose number", data: `{"tip":"` + tip + `","number":"v1.2"}`, fails: "not a semantic version"},
		{name: "number with space", data: `{"tip":"` + tip + `","number":" 1.2.3"}`, fails: "not a semantic version"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseCacheEntry([]byte(tt.data))
			if tt.fails != "" {
				require.ErrorContains(t, err, tt.fails)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

// TestSemverCacheFiles: entries round-trip; a symlink, a file others may
// read or write, an oversized file and a directory others may write are
// refused.
func TestSemverCacheFiles(t *testing.T) {
	t.Parallel()
	e := cacheEntry{Tip: strings.Repeat("0", 40), Number: "1.0.0"}
	fresh := func(t *testing.T) string {
		return filepath.Join(t.TempDir(), cacheDirName, "k.json")
	}

	t.Run("round trip, 0600 in 0700", func(t *testing.T) {
		t.Parallel()
		path := fresh(t)
		require.NoError(t, writeCacheEntry(path, e))
		got, err := readCacheEntry(path)
		require.NoError(t, err)
		require.Equal(t, e, got)
		fi, err := os.Stat(path)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
		di, err := os.Stat(filepath.Dir(path))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o700), di.Mode().Perm())
		left, err := filepath.Glob(filepath.Join(filepath.Dir(path), ".entry-*"))
		require.NoError(t, err)
		require.Empty(t, left, "no temp file left behind")
	})
	t.Run("symlink", func(t *testing.T) {
		t.Parallel()
		path := fresh(t)
		target := fresh(t)
		require.NoError(t, writeCacheEntry(target, e))
		require.NoError(t, os.Mkdir(filepath.Dir(path), 0o700))
		require.NoError(t, os.Symlink(target, path))
		_, err := readCacheEntry(path)
		require.ErrorContains(t, err, "not a regular file")
	})
	t.Run("mode 0644", func(t *testing.T) {
		t.Parallel()
		path := fresh(t)
		require.NoError(t, writeCacheEntry(path, e))
		require.NoError(t, os.Chmod(path, 0o644))
		_, err := readCacheEntry(path)
		require.ErrorContains(t, err, "mode 0600")
	})
	t.Run("oversized", func(t *testing.T) {
		t.Parallel()
		path := fresh(t)
		require.NoError(t, writeCacheEntry(path, e))
		require.NoError(t, os.WriteFile(path, []byte(strings.Repeat(" ", maxCacheEntry+1)), 0o600))
		_, err := readCacheEntry(path)
		require.ErrorContains(t, err, "larger than")
	})
	t.Run("directory others may write", func(t *testing.T) {
		t.Parallel()
		path := fresh(t)
		require.NoError(t, os.Mkdir(filepath.Dir(path), 0o700))
		require.NoError(t, os.Chmod(filepath.Dir(path), 0o777))
		require.ErrorContains(t, writeCacheEntry(path, e), "not a directory of mode 0700")
		_, err := readCacheEntry(path)
		require.ErrorContains(t, err, "not a directory of mode 0700")
	})
}
