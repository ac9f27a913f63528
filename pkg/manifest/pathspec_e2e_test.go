package manifest_test

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
)

// pathspecFixture is a config repo whose commits each touch one file, at
// several depths: seed (everything), c1 apps/web/deploy.yaml, c2 docs, c3
// apps/api/prod/eu/deploy.yaml (three dirs below apps), c4
// apps/web/README.md, c5 docs.
type pathspecFixture struct {
	*fixture
	c1, c2, c3, c4, c5 string
}

func newPathspecFixture(t *testing.T) *pathspecFixture {
	t.Helper()
	fx := &pathspecFixture{fixture: newFixture(t, map[string]string{
		"apps/web/deploy.yaml": deployment("1.0"), "apps/api/prod/eu/deploy.yaml": deployment("1.0"),
		"apps/web/README.md": "web\n", "docs/x.md": "x\n", "other/deploy.yaml": deployment("1.0"),
	})}
	fx.c1 = fx.srv.Commit(t, "deploy", "main", map[string]string{"apps/web/deploy.yaml": deployment("1.1")}, "web")
	fx.c2 = fx.srv.Commit(t, "deploy", "main", map[string]string{"docs/x.md": "y\n"}, "docs")
	fx.c3 = fx.srv.Commit(t, "deploy", "main", map[string]string{"apps/api/prod/eu/deploy.yaml": deployment("1.1")}, "eu")
	fx.c4 = fx.srv.Commit(t, "deploy", "main", map[string]string{"apps/web/README.md": "web!\n"}, "readme")
	fx.c5 = fx.srv.Commit(t, "deploy", "main", map[string]string{"docs/x.md": "z\n"}, "docs again")
	return fx
}

// gitResourceCheck is what git-resource's check answers for the paths: the
// commits `git rev-list --first-parent <branch> -- <paths> :!<ignore_paths>`
// lists, run by git on the server's repository; with a version, that one
// and every later one, oldest first.
func (fx *pathspecFixture) gitResourceCheck(t *testing.T, paths, ignore []string, version string) []string {
	t.Helper()
	args := append([]string{"rev-list", "--first-parent", "main", "--"}, paths...)
	for _, p := range ignore {
		args = append(args, ":!"+p)
	}
	revs := strings.Fields(fx.srv.Git(t, "deploy", args...))
	if version == "" {
		return revs[:1]
	}
	i := slices.Index(revs, version)
	require.GreaterOrEqual(t, i, 0, "the version touches the paths")
	out := slices.Clone(revs[:i+1])
	slices.Reverse(out)
	return out
}

func (fx *pathspecFixture) check(t *testing.T, paths, ignore []string, version string) []string {
	t.Helper()
	req := map[string]any{"source": fx.source(map[string]any{"paths": paths, "ignore_paths": ignore})}
	if version != "" {
		req["version"] = map[string]string{"ref": version}
	}
	var vs []map[string]string
	rt.Run(t, "check", "", req, nil).OK(t, &vs)
	out := []string{}
	for _, v := range vs {
		out = append(out, v["ref"])
	}
	return out
}

// TestManifestPathspecCheck: check reads paths and ignore_paths as git
// pathspecs, as git-resource does: "*" matches across "/", "**" reaches any
// depth, a dir name covers everything under it. Each answer is also
// compared with git's own for the same pathspecs.
func TestManifestPathspecCheck(t *testing.T) {
	t.Parallel()
	fx := newPathspecFixture(t)
	for _, tc := range []struct {
		name          string
		paths, ignore []string
		version       string
		want          []string
	}{
		{"star crosses dirs", []string{"apps/*.yaml"}, nil, "", []string{fx.c3}},
		{"star crosses dirs, from a version", []string{"apps/*.yaml"}, nil, fx.c1, []string{fx.c1, fx.c3}},
		{"double star at any depth", []string{"apps/**/deploy.yaml"}, nil, fx.seed, []string{fx.seed, fx.c1, fx.c3}},
		{"a dir name", []string{"apps/web"}, nil, "", []string{fx.c4}},
		{"a dir name, from a version", []string{"apps/web"}, nil, fx.c1, []string{fx.c1, fx.c4}},
		{"ignore_paths star crosses dirs", []string{"apps"}, []string{"apps/*.md"}, "", []string{fx.c3}},
		{"exclude magic in paths", []string{"apps", ":!apps/api"}, nil, fx.c1, []string{fx.c1, fx.c4}},
		{"glob magic: one level", []string{":(glob)apps/*/deploy.yaml"}, nil, "", []string{fx.c1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := fx.check(t, tc.paths, tc.ignore, tc.version)
			require.Equal(t, tc.want, got)
			require.Equal(t, fx.gitResourceCheck(t, tc.paths, tc.ignore, tc.version), got, "git's answer")
		})
	}
}

// TestManifestPathspecGetArchive: get's archive and image count take the
// files "apps/*.yaml" matches at any depth.
func TestManifestPathspecGetArchive(t *testing.T) {
	t.Parallel()
	fx := newPathspecFixture(t)
	dir := t.TempDir()
	var out rt.Response
	rt.Run(t, "in", dir, map[string]any{"source": fx.source(map[string]any{"paths": []string{"apps/*.yaml"}}),
		"version": map[string]string{"ref": fx.c5}, "params": map[string]any{"archive": true}}, nil).OK(t, &out)
	require.Equal(t, []string{"2"}, out.Meta("images"), "apps/web/deploy.yaml and apps/api/prod/eu/deploy.yaml")
	require.Equal(t, []string{"apps/api/prod/eu/deploy.yaml", "apps/web/deploy.yaml"}, archiveNames(t, filepath.Join(dir, ".git", "gitops", "manifests.tgz")))
}

// TestManifestPathspecPut: a put's params.paths reach every depth
// "apps/**/deploy.yaml" names, and nothing else.
func TestManifestPathspecPut(t *testing.T) {
	t.Parallel()
	fx := newPathspecFixture(t)
	_, res := fx.put(t, fx.source(nil), map[string]any{"paths": []string{"apps/**/deploy.yaml"},
		"images": []map[string]any{{"repository": "acme/web", "tag": "2.0"}}})
	res.OK(t, nil)
	fx.requireFile(t, "apps/web/deploy.yaml", deployment("2.0"))
	fx.requireFile(t, "apps/api/prod/eu/deploy.yaml", deployment("2.0"))
	fx.requireFile(t, "other/deploy.yaml", deployment("1.0"))
}

// archiveNames lists the entries of a manifests.tgz.
func archiveNames(t *testing.T, file string) []string {
	t.Helper()
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	gz, err := gzip.NewReader(f)
	require.NoError(t, err)
	tr := tar.NewReader(gz)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		names = append(names, h.Name)
	}
	slices.Sort(names)
	return names
}
