package manifest

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// pathspecRepo is a git repository with one commit adding files at several
// depths, and with names holding glob specials, blanks and upper case.
var pathspecRepo = []string{
	"a.yaml", "deploy.yaml", "apps.yaml", "apps/web.yaml", "apps/README.md", "apps/web/deploy.yaml",
	"apps/web/README.md", "apps/web/prod/deploy.yaml", "apps/web/prod/eu/deploy.yaml", "apps/api/deploy.yaml",
	"apps/api/values.yml", "apps/[x]/a.yaml", "appsx/a.yaml", "x/apps/deploy.yaml", "sp ace/a.yaml",
	"lit*/a.yaml", "Apps/Up.yaml", "b/apps/web.yaml", "c-1/d.yaml", "c2/d.yaml",
}

// TestPathspecMatchesGit compares pathSet with git itself on each pattern:
// the files `git diff-tree -r --root <commit> -- <pathspecs>` names (what
// `git log -- <paths>`, so git-resource's check, applies) and `git ls-files
// -- <pathspecs>`.
func TestPathspecMatchesGit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir, "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "git %s: %s", strings.Join(args, " "), out)
		return string(out)
	}
	git("init", "-q")
	for _, f := range pathspecRepo {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte(f), 0o644))
	}
	git("add", "-A")
	git("commit", "-q", "-m", "files")
	lines := func(s string) []string {
		out := []string{}
		for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
			if l != "" {
				out = append(out, l)
			}
		}
		slices.Sort(out)
		return out
	}

	for _, tc := range []struct {
		paths, ignore []string
	}{
		// A directory name covers everything under it, at any depth.
		{paths: []string{"apps"}}, {paths: []string{"apps/"}}, {paths: []string{"apps/web"}}, {paths: []string{"apps/we"}},
		{paths: []string{"a.yaml"}}, {paths: []string{"apps/web.yaml/"}}, {paths: []string{"Apps"}},
		{paths: []string{"."}}, {paths: []string{"./apps"}}, {paths: []string{"apps/./web"}}, {paths: []string{"apps//web"}},
		{paths: []string{"apps/web/.."}}, {paths: []string{"apps/../a.yaml"}}, {paths: []string{"sp ace"}},
		// "*" matches across "/"; "**" is "*".
		{paths: []string{"apps/*.yaml"}}, {paths: []string{"apps/**/deploy.yaml"}}, {paths: []string{"**/deploy.yaml"}},
		{paths: []string{"*.yaml"}}, {paths: []string{"*"}}, {paths: []string{"apps/*"}}, {paths: []string{"apps/**"}},
		{paths: []string{"ap*"}}, {paths: []string{"ap?s"}}, {paths: []string{"a?ps/web/*"}}, {paths: []string{"*deploy.yaml"}},
		{paths: []string{"*/deploy.yaml"}}, {paths: []string{"apps**deploy.yaml"}}, {paths: []string{"apps/web*"}},
		{paths: []string{"lit*"}}, {paths: []string{`lit\*/a.yaml`}}, {paths: []string{`\*`}}, {paths: []string{`apps/\w*`}},
		{paths: []string{`apps/web\`}},
		// Classes.
		{paths: []string{"[ab].yaml"}}, {paths: []string{"[!a]*.yaml"}}, {paths: []string{"[^a]*.yaml"}},
		{paths: []string{"[[:upper:]]*"}}, {paths: []string{"[a-c]pps/*"}}, {paths: []string{"apps/[]"}},
		{paths: []string{"apps/[!]"}}, {paths: []string{"apps/[]x]*"}}, {paths: []string{"apps/[[]x]/*"}},
		{paths: []string{"c[[:digit:]-]*"}}, {paths: []string{"c[[:nope:]]*"}}, {paths: []string{"c[[:digit]*"}},
		{paths: []string{"c[[:]*"}}, {paths: []string{"*/[[:alpha:]eb]/deploy.yaml"}}, {paths: []string{`c[\-]*`}},
		{paths: []string{"c[0-9]/*"}}, {paths: []string{"apps/[!a]*/*.yaml"}},
		// Magic.
		{paths: []string{":(glob)apps/*.yaml"}}, {paths: []string{":(glob)apps/**/deploy.yaml"}},
		{paths: []string{":(glob)**/deploy.yaml"}}, {paths: []string{":(glob)apps/*"}}, {paths: []string{":(glob)ap*"}},
		{paths: []string{":(glob)apps/**"}}, {paths: []string{":(glob)apps/**/"}}, {paths: []string{":(glob)**"}},
		{paths: []string{":(glob)*/deploy.yaml"}}, {paths: []string{":(glob)apps/*/deploy.yaml"}}, {paths: []string{":(glob)apps**"}},
		{paths: []string{":(glob)apps/**/*.yaml"}}, {paths: []string{":(glob)**/*.yml"}}, {paths: []string{":(glob)apps/*/*"}},
		{paths: []string{":(glob)ap?s"}}, {paths: []string{":(glob)apps"}}, {paths: []string{":(glob)apps/w**/*"}},
		{paths: []string{":(glob)apps/web/**/deploy.yaml"}}, {paths: []string{":(glob)apps/[!a]*/deploy.yaml"}},
		{paths: []string{":(icase)apps/up.yaml"}}, {paths: []string{":(icase)apps"}}, {paths: []string{":(icase)APPS/web.yaml"}},
		{paths: []string{":(icase)ap?s/WEB*"}}, {paths: []string{":(icase)[A]*"}}, {paths: []string{":(icase)[a]*"}},
		{paths: []string{":(icase)[A-Z]pps/*"}}, {paths: []string{":(glob,icase)APPS/*.yaml"}},
		{paths: []string{":(literal)lit*"}}, {paths: []string{":(literal)apps/*.yaml"}}, {paths: []string{`:(literal)lit\*`}},
		{paths: []string{":(top)apps/web"}}, {paths: []string{":/apps/web"}}, {paths: []string{":apps"}}, {paths: []string{"::apps"}},
		// Exclusions, as magic in paths and as ignore_paths.
		{paths: []string{":!apps"}}, {paths: []string{":^apps"}}, {paths: []string{":(exclude)apps"}}, {paths: []string{":!/apps"}},
		{paths: []string{":/!apps"}}, {paths: []string{":!:apps"}}, {paths: []string{":(exclude,glob)apps/*"}},
		{paths: []string{"apps", ":!apps/web"}},
		{paths: []string{"apps"}, ignore: []string{"*.md", "apps/api"}},
		{paths: []string{"apps/*.yaml"}, ignore: []string{"apps/web"}},
		{ignore: []string{"apps"}}, {ignore: []string{"*.yaml"}}, {ignore: []string{"apps/*.md"}},
		{paths: []string{"apps/web", "apps/api", "c2"}, ignore: []string{"**/prod"}},
	} {
		args := append([]string{}, tc.paths...)
		for _, p := range tc.ignore {
			args = append(args, ":!"+p)
		}
		name := strings.Join(args, " ")
		t.Run(name, func(t *testing.T) {
			gitArgs := args
			if len(gitArgs) == 0 {
				gitArgs = []string{"."}
			}
			logged := lines(git(append([]string{"-c", "core.quotePath=false", "diff-tree", "-r", "--root", "--no-commit-id", "--name-only", "HEAD", "--"}, gitArgs...)...))
			listed := lines(git(append([]string{"-c", "core.quotePath=false", "ls-files", "--"}, gitArgs...)...))
			s := pathSet{include: tc.paths, exclude: tc.ignore}
			var ours []string
			for _, f := range pathspecRepo {
				if s.Match(f) {
					ours = append(ours, f)
				}
			}
			if ours == nil {
				ours = []string{}
			}
			slices.Sort(ours)
			require.Equal(t, listed, ours, "git ls-files -- %s", name)
			require.Equal(t, logged, ours, "git diff-tree -- %s", name)
			for _, f := range ours {
				inside := false
				for _, p := range s.Prefixes() {
					inside = inside || underPath(f, p)
				}
				require.True(t, inside, "%s is under one of Prefixes() %q", f, s.Prefixes())
			}
		})
	}
}

func TestPathspecInvalid(t *testing.T) {
	t.Parallel()
	for p, want := range map[string]string{
		":(glob":           "missing ')'",
		":(Glob)apps":      `invalid pathspec magic "Glob"`,
		":(glob,literal)a": "incompatible",
		":(attr:foo)apps":  "attr magic is not supported",
		":#apps":           `unimplemented pathspec magic '#'`,
		":(top)/etc":       "must be relative to the repository root",
		":!../x":           "leaves the repository",
		"/etc":             "must be relative to the repository root",
		"apps/../../x":     "leaves the repository",
		"":                 "is empty",
	} {
		err := validatePathspec("source.paths[0]", p)
		require.ErrorContains(t, err, want, p)
		require.ErrorContains(t, err, "source.paths[0]", p)
		if ps := parsePathspec(p); ps.err != nil {
			require.False(t, ps.match("apps/x"), "%q matches nothing", p)
		}
	}
	for _, p := range []string{"apps/[", ":(top,exclude,icase)x", ":/!apps", "apps/**", "[", "."} {
		require.NoError(t, validatePathspec("source.paths[0]", p), p)
	}
}

func TestPathSetPrefixes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		include []string
		want    []string
	}{
		{nil, []string{""}},
		{[]string{":!docs"}, []string{""}},
		{[]string{"apps/web", "apps", "clusters/eu/values.yaml"}, []string{"apps", "clusters/eu/values.yaml"}},
		{[]string{"apps/*.yaml", "apps/**/deploy.yaml", "overlays/prod/"}, []string{"apps", "overlays/prod"}},
		{[]string{"apps/web*", "appsx/a"}, []string{"apps", "appsx/a"}},
		{[]string{"*.yaml", "apps"}, []string{""}},
		{[]string{"ap?s/x"}, []string{""}},
		{[]string{`a/b\*c/d`}, []string{"a"}},
		{[]string{":(literal)a/b*c/d", "./x//y/."}, []string{"a/b*c/d", "x/y"}},
		{[]string{":(icase)Apps/web"}, []string{""}},
		{[]string{":(glob)apps/**", ":/lit"}, []string{"apps", "lit"}},
		{[]string{"."}, []string{""}},
	} {
		require.Equal(t, tc.want, pathSet{include: tc.include}.Prefixes(), "%q", tc.include)
	}
}
