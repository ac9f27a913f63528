package manifest_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/internal/gittest"
	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
)

// checkRefs runs check through the binary and returns the refs it reports,
// failing the test unless it succeeds.
func checkRefs(t *testing.T, source map[string]any, version string) ([]string, rt.Result) {
	t.Helper()
	req := map[string]any{"source": source}
	if version != "" {
		req["version"] = map[string]string{"ref": version}
	}
	res := rt.Run(t, "check", "", req, nil)
	var vs []map[string]string
	res.OK(t, &vs)
	refs := []string{}
	for _, v := range vs {
		refs = append(refs, v["ref"])
	}
	return refs, res
}

// docsOnly makes n commits that touch docs/ only.
func (f *fixture) docsOnly(t *testing.T, n int) {
	t.Helper()
	f.srv.SeedHistory(t, "deploy", "main", n, func(i int) map[string]string {
		return map[string]string{"docs/notes.md": fmt.Sprintf("note %d\n", i)}
	})
}

// The last commit that touched the paths lies beyond the first fetch (100
// commits): check reports it, not the commit where the fetch stopped.
func TestManifestCheckPathsQuietPastFirstFetch(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, map[string]string{"apps/web/deploy.yaml": "image: a\n", "docs/notes.md": "x\n"})
	src := fx.source(map[string]any{"paths": []string{"apps/web/"}})
	fx.docsOnly(t, 150)
	refs, res := checkRefs(t, src, "")
	require.Equal(t, []string{fx.seed}, refs, "the root commit is the only one that touched apps/web/\n%s", res.Stderr)

	touch := fx.srv.Commit(t, "deploy", "main", map[string]string{"apps/web/deploy.yaml": "image: b\n"}, "web b")
	fx.docsOnly(t, 250)
	refs, res = checkRefs(t, src, "")
	require.Equal(t, []string{touch}, refs, "250 quiet commits on top\n%s", res.Stderr)
	require.Contains(t, res.Stderr, "reading past the 100 commits fetched of main")

	// A path that never existed: nothing, after reading the whole history.
	refs, _ = checkRefs(t, fx.source(map[string]any{"paths": []string{"apps/api/"}}), "")
	require.Empty(t, refs)
}

// With a version, every commit after it that touches the paths is
// reported, oldest first, however far back the version is; the commits of
// a merged branch are not (git log --first-parent, as git-resource's
// check), while the merge itself is when it changes the paths.
func TestManifestCheckVersionFarBack(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, map[string]string{"apps/web/deploy.yaml": "image: a\n", "apps/api/deploy.yaml": "image: a\n", "docs/notes.md": "x\n"})
	src := fx.source(map[string]any{"paths": []string{"apps/web/"}, "ignore_paths": []string{"apps/web/README.md"}})
	version := fx.srv.Commit(t, "deploy", "main", map[string]string{"apps/api/deploy.yaml": "image: b\n"}, "api b")
	var want []string
	for i := range 6 {
		fx.docsOnly(t, 60)
		want = append(want, fx.srv.Commit(t, "deploy", "main", map[string]string{"apps/web/deploy.yaml": fmt.Sprintf("image: w%d\n", i)}, "web"))
		fx.srv.Commit(t, "deploy", "main", map[string]string{"apps/web/README.md": fmt.Sprintf("%d\n", i)}, "readme")
	}
	// A side branch with one commit that touches apps/web/, merged.
	fx.srv.Git(t, "deploy", "branch", "side", "main")
	fx.srv.Commit(t, "deploy", "side", map[string]string{"apps/web/tmp.yaml": "image: t\n"}, "side: tmp")
	side := fx.srv.Commit(t, "deploy", "side", map[string]string{"apps/web/extra.yaml": "image: s\n", "apps/web/tmp.yaml": gittest.Deleted}, "side")
	fx.docsOnly(t, 3)
	mainTip := fx.srv.Tip(t, "deploy", "main")
	tree := fx.srv.Git(t, "deploy", "rev-parse", side+"^{tree}")
	// The merge keeps side's tree: main's docs commits are not in it, so
	// it changes apps/web/ (extra.yaml) and docs/ against its first parent.
	merge := fx.srv.Git(t, "deploy", "commit-tree", tree, "-p", mainTip, "-p", side, "-m", "merge side")
	fx.srv.Git(t, "deploy", "update-ref", "refs/heads/main", merge, mainTip)
	want = append(want, merge)
	fx.docsOnly(t, 120)

	refs, res := checkRefs(t, src, version)
	require.Equal(t, append([]string{version}, want...), refs, "%s", res.Stderr)
	require.NotContains(t, refs, side)

	// From the last web commit: it and the merge.
	refs, _ = checkRefs(t, src, want[5])
	require.Equal(t, []string{want[5], merge}, refs)
	// No paths: every commit on the first-parent chain since the version.
	refs, _ = checkRefs(t, fx.source(nil), want[5])
	require.Len(t, refs, 1+1+3+1+120, "the version, readme, 3 docs, the merge, 120 docs")
	require.Equal(t, fx.srv.Tip(t, "deploy", "main"), refs[len(refs)-1])
	require.NotContains(t, refs, side)
	// Only the merged branch's commits touched tmp.yaml (added, then
	// removed): no commit on the first-parent chain did.
	refs, _ = checkRefs(t, fx.source(map[string]any{"paths": []string{"apps/web/tmp.yaml"}}), "")
	require.Empty(t, refs)
}

// git-resource's rule: a commit whose message holds [ci skip] or [skip ci]
// is not reported, unless source.disable_ci_skip. Own commits (put adds
// [ci skip] by default) are skipped by it too; ignore_own_commits skips
// them when disable_ci_skip lets [ci skip] through, or when put's ci_skip
// was false.
func TestManifestCheckCISkip(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, map[string]string{"apps/web.yaml": "spec:\n  containers:\n  - image: acme/web:1.0\n"})
	plain := fx.srv.Commit(t, "deploy", "main", map[string]string{"apps/a.yaml": "a: 1\n"}, "plain")
	skip1 := fx.srv.Commit(t, "deploy", "main", map[string]string{"apps/a.yaml": "a: 2\n"}, "tweak [ci skip]")
	skip2 := fx.srv.Commit(t, "deploy", "main", map[string]string{"apps/a.yaml": "a: 3\n"}, "tweak\n\nbody says [skip\tci]")
	near := fx.srv.Commit(t, "deploy", "main", map[string]string{"apps/a.yaml": "a: 4\n"}, "tweak [ci-skip] [skip  ci] [CI SKIP]")
	src := fx.source(map[string]any{"paths": []string{"apps"}})

	refs, _ := checkRefs(t, src, plain)
	require.Equal(t, []string{plain, near}, refs, "[ci skip] and [skip<tab>ci] skipped; near misses are not")
	refs, _ = checkRefs(t, src, skip1)
	require.Equal(t, []string{skip1, near}, refs, "the requested version stays first")
	src["disable_ci_skip"] = true
	refs, _ = checkRefs(t, src, plain)
	require.Equal(t, []string{plain, skip1, skip2, near}, refs)

	// A put of ours carries [ci skip]: skipped without ignore_own_commits.
	var out rt.Response
	rt.Run(t, "out", t.TempDir(), map[string]any{"source": fx.source(nil), "params": map[string]any{
		"images": []map[string]any{{"repository": "acme/web", "tag": "1.1"}}}}, rt.Env("ship", "7")).OK(t, &out)
	own := out.Version["ref"]
	refs, _ = checkRefs(t, fx.source(map[string]any{"paths": []string{"apps"}}), near)
	require.Equal(t, []string{near}, refs, "own commit skipped by its [ci skip]")
	refs, _ = checkRefs(t, fx.source(map[string]any{"paths": []string{"apps"}, "disable_ci_skip": true}), near)
	require.Equal(t, []string{near, own}, refs)
	refs, _ = checkRefs(t, fx.source(map[string]any{"paths": []string{"apps"}, "disable_ci_skip": true, "ignore_own_commits": true}), near)
	require.Equal(t, []string{near}, refs)
	// With no version: the newest commit that is neither skipped nor ours.
	refs, _ = checkRefs(t, fx.source(nil), "")
	require.Equal(t, []string{near}, refs)

	res := rt.Run(t, "check", "", map[string]any{"source": fx.source(map[string]any{"disable_ci_skip": "yes"})}, nil)
	res.Fails(t, "source.disable_ci_skip")
	require.True(t, strings.Count(res.Stderr, "\n") < 5, "one config error: %s", res.Stderr)
}
