package semver_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/internal/gittest"
	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
)

// TestSemverCheckHistory: check given a version returns the versions the
// file held from it on, oldest first (`fly check-resource --from`): the
// requested one included when the file held it, the current one last. A
// version the file never held gives the current one alone; the current one
// gives itself. Only the first-parent line of the branch counts, a commit
// that leaves the number as it was (another file, or the same number
// rewritten) adds nothing, and an old content that is not a version is
// passed over.
func TestSemverCheckHistory(t *testing.T) {
	t.Parallel()
	srv := gittest.New(t)
	srv.CreateRepo(t, "app")
	srv.Commit(t, "app", "version", map[string]string{"version": "1.0.0\n"}, "1.0.0")
	srv.Commit(t, "app", "version", map[string]string{"README": "hello"}, "docs")
	srv.Commit(t, "app", "version", map[string]string{"version": "1.1.0"}, "1.1.0")
	srv.Commit(t, "app", "version", map[string]string{"version": "1.1.0\n"}, "1.1.0 again, with a newline")
	srv.Commit(t, "app", "version", map[string]string{"version": "not a version"}, "oops")
	srv.Commit(t, "app", "version", map[string]string{"version": "1.2.0 written by hand"}, "1.2.0")
	srv.Commit(t, "app", "version", map[string]string{"version": gittest.Deleted}, "gone for a while")
	srv.Commit(t, "app", "version", map[string]string{"version": "2.0.0-rc.1"}, "2.0.0-rc.1")
	// A merge whose second parent held 9.9.9: not on the first-parent line.
	srv.Commit(t, "app", "side", map[string]string{"version": "9.9.9"}, "side line")
	tree := srv.Git(t, "app", "rev-parse", "version^{tree}")
	merge := srv.Git(t, "app", "commit-tree", tree, "-p", "version", "-p", "side", "-m", "merge side")
	srv.Git(t, "app", "update-ref", "refs/heads/version", merge)
	srv.Commit(t, "app", "version", map[string]string{"version": "2.0.0"}, "2.0.0")

	src := map[string]any{"driver": "git", "uri": srv.HTTPURL("app"), "branch": "version", "file": "version"}
	numbers := func(ns ...string) []map[string]string {
		out := []map[string]string{}
		for _, n := range ns {
			out = append(out, map[string]string{"number": n})
		}
		return out
	}
	for _, tt := range []struct {
		name, from string
		want       []map[string]string
	}{
		{"from the first version", "1.0.0", numbers("1.0.0", "1.1.0", "1.2.0", "2.0.0-rc.1", "2.0.0")},
		{"from one the file held twice in a row", "1.1.0", numbers("1.1.0", "1.2.0", "2.0.0-rc.1", "2.0.0")},
		{"from the one before the current", "2.0.0-rc.1", numbers("2.0.0-rc.1", "2.0.0")},
		{"from the current one", "2.0.0", numbers("2.0.0")},
		{"from one the file never held", "1.0.5", numbers("2.0.0")},
		{"from one newer than the current", "3.0.0", numbers("2.0.0")},
		{"from one only a merged line held", "9.9.9", numbers("2.0.0")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var versions []map[string]string
			req := map[string]any{"source": src, "version": map[string]string{"number": tt.from}}
			rt.Run(t, "check", "", req, map[string]string{"TMPDIR": t.TempDir()}).OK(t, &versions)
			require.Equal(t, tt.want, versions)
		})
	}
}

// TestSemverCheckHistoryFarBack: a version 500 commits back on a branch
// whose other file is large in every commit: check fetches the history
// deeper and deeper to disk (100, 300, then 900 commits) and reads only
// the trees along the version file's path, so its peak memory stays well
// under what the branch's files take inflated (701 × 256 KiB, 175 MiB),
// which a fetch of the whole branch into memory holds.
func TestSemverCheckHistoryFarBack(t *testing.T) {
	t.Parallel()
	srv := gittest.New(t)
	srv.CreateRepo(t, "app")
	const commits, blob = 701, 256 << 10
	srv.SeedHistory(t, "app", "version", commits, func(i int) map[string]string {
		line := fmt.Sprintf("build %d\n", i) // each blob its own: no deltas, but zlib makes it small on the wire
		files := map[string]string{"data": strings.Repeat(line, blob/len(line))}
		if i%100 == 0 {
			files["version"] = fmt.Sprintf("1.%d.0", i/100)
		}
		return files
	})
	src := map[string]any{"driver": "git", "uri": srv.HTTPURL("app"), "branch": "version", "file": "version"}
	req := map[string]any{"source": src, "version": map[string]string{"number": "1.2.0"}}
	res := rt.RunPeakRSS(context.Background(), t, "check", "", req, map[string]string{"TMPDIR": t.TempDir()})
	t.Logf("peak RSS of check, a version 500 commits back: %.1f MiB\n%s", float64(res.MaxRSS)/(1<<20), res.Stderr)
	var versions []map[string]string
	res.OK(t, &versions)
	require.Equal(t, []map[string]string{{"number": "1.2.0"}, {"number": "1.3.0"}, {"number": "1.4.0"}, {"number": "1.5.0"}, {"number": "1.6.0"}, {"number": "1.7.0"}}, versions)
	require.Contains(t, res.Stderr, "reading past the 300 commits fetched of version: fetching 900")
	require.Less(t, res.MaxRSS, int64(commits*blob/2), "peak RSS %d MiB", res.MaxRSS>>20)
}
