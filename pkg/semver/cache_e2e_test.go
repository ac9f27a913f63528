package semver_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
)

// TestSemverWarmCheck: from the second check on in the same container (the
// same temp dir), check lists the branch's refs and fetches nothing while
// the tip has not moved; it fetches again once it moved. A requested version
// other than the cached one walks the history as a cold check does. The
// cache holds no credentials, is written 0600, and an entry that is not
// exactly what check writes is ignored and rewritten.
func TestSemverWarmCheck(t *testing.T) {
	t.Parallel()
	srv := newCountingServer(t)
	srv.CreateRepo(t, "app")
	srv.Commit(t, "app", "version", map[string]string{"version": "1.0.0"}, "1.0.0")
	uri := strings.Replace(srv.HTTPURL("app"), "://", "://ci-user:s3cret-token@", 1)
	src := map[string]any{"driver": "git", "uri": uri, "branch": "version", "file": "version"}
	tmp := t.TempDir()
	env := map[string]string{"TMPDIR": tmp}

	// check runs check and returns what it reported and how many fetches it
	// made.
	check := func(from string) ([]map[string]string, int64) {
		t.Helper()
		req := map[string]any{"source": src}
		if from != "" {
			req["version"] = map[string]string{"number": from}
		}
		before := srv.fetches.Load()
		var versions []map[string]string
		res := rt.Run(t, "check", "", req, env)
		res.OK(t, &versions)
		res.NoSecrets(t, "s3cret-token")
		return versions, srv.fetches.Load() - before
	}
	numbers := func(ns ...string) []map[string]string {
		out := []map[string]string{}
		for _, n := range ns {
			out = append(out, map[string]string{"number": n})
		}
		return out
	}

	got, fetches := check("")
	require.Equal(t, numbers("1.0.0"), got)
	require.EqualValues(t, 1, fetches, "a cold check fetches the tip")

	entries, err := filepath.Glob(filepath.Join(tmp, "gitops-resource-check", "*.json"))
	require.NoError(t, err)
	require.Len(t, entries, 1)
	entry := entries[0]
	fi, err := os.Stat(entry)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	data, err := os.ReadFile(entry)
	require.NoError(t, err)
	for _, secret := range []string{"s3cret-token", "ci-user", srv.HTTPAddr()} {
		require.NotContains(t, string(data), secret, "the cache holds the tip and the number, nothing of the source")
	}

	got, fetches = check("")
	require.Equal(t, numbers("1.0.0"), got)
	require.EqualValues(t, 0, fetches, "the tip did not move: nothing fetched")
	got, fetches = check("1.0.0")
	require.Equal(t, numbers("1.0.0"), got)
	require.EqualValues(t, 0, fetches, "the requested version is the cached one at the same tip: nothing fetched")

	srv.Commit(t, "app", "version", map[string]string{"README": "docs"}, "docs")
	requests := srv.requests.Load()
	got, fetches = check("1.0.0")
	require.Equal(t, numbers("1.0.0"), got)
	require.EqualValues(t, 1, fetches, "the tip moved: the tip is fetched, the number is unchanged")
	require.EqualValues(t, 2, srv.requests.Load()-requests, "one ref listing serves both the cache's question and the fetch")
	got, fetches = check("1.0.0")
	require.Equal(t, numbers("1.0.0"), got)
	require.EqualValues(t, 0, fetches)

	srv.Commit(t, "app", "version", map[string]string{"version": "1.1.0"}, "1.1.0")
	got, fetches = check("1.0.0")
	require.Equal(t, numbers("1.0.0", "1.1.0"), got)
	require.EqualValues(t, 2, fetches, "a new number: the tip, then the history")
	got, fetches = check("1.1.0")
	require.Equal(t, numbers("1.1.0"), got)
	require.EqualValues(t, 0, fetches)
	got, fetches = check("1.0.0")
	require.Equal(t, numbers("1.0.0", "1.1.0"), got, "another requested version than the cached one is not answered from the cache")
	require.EqualValues(t, 2, fetches)

	for name, content := range map[string]string{
		"garbage":           "\x00not json",
		"a forged tip":      `{"tip":"` + strings.Repeat("0", 40) + `","number":"9.9.9"}`,
		"an unknown field":  `{"tip":"` + srv.Tip(t, "app", "version") + `","number":"9.9.9","x":1}`,
		"a loose number":    `{"tip":"` + srv.Tip(t, "app", "version") + `","number":"v9.9"}`,
		"two entries":       `{"tip":"` + srv.Tip(t, "app", "version") + `","number":"1.1.0"}{}`,
		"an upper-case tip": `{"tip":"` + strings.ToUpper(srv.Tip(t, "app", "version")) + `","number":"9.9.9"}`,
	} {
		require.NoError(t, os.WriteFile(entry, []byte(content), 0o600), name)
		got, fetches = check("")
		require.Equal(t, numbers("1.1.0"), got, name)
		require.EqualValues(t, 1, fetches, "%s: ignored, so the check fetched", name)
		got, fetches = check("")
		require.Equal(t, numbers("1.1.0"), got, name)
		require.EqualValues(t, 0, fetches, "%s: rewritten by the check before", name)
	}

	// An entry others may write is not trusted, whatever it holds.
	require.NoError(t, os.Chmod(entry, 0o666))
	got, fetches = check("")
	require.Equal(t, numbers("1.1.0"), got)
	require.EqualValues(t, 1, fetches, "an entry of mode 0666 is ignored")
	fi, err = os.Stat(entry)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "and replaced by one of mode 0600")
}

// TestSemverWarmCheckNoVersionYet: with no version file yet, the cache
// remembers that, and a check handed initial_version back (as Concourse
// does) fetches nothing while the tip stays.
func TestSemverWarmCheckNoVersionYet(t *testing.T) {
	t.Parallel()
	srv := newCountingServer(t)
	srv.CreateRepo(t, "app")
	srv.Commit(t, "app", "version", map[string]string{"README": "no version yet"}, "init")
	src := map[string]any{"driver": "git", "uri": srv.HTTPURL("app"), "branch": "version", "file": "version", "initial_version": "0.1.0"}
	env := map[string]string{"TMPDIR": t.TempDir()}
	for i, from := range []string{"", "0.1.0", "0.1.0"} {
		req := map[string]any{"source": src}
		if from != "" {
			req["version"] = map[string]string{"number": from}
		}
		before := srv.fetches.Load()
		var versions []map[string]string
		rt.Run(t, "check", "", req, env).OK(t, &versions)
		require.Equal(t, []map[string]string{{"number": "0.1.0"}}, versions)
		want := int64(0)
		if i == 0 {
			want = 1
		}
		require.Equal(t, want, srv.fetches.Load()-before, "check %d", i)
	}
}
