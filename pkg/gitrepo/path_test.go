package gitrepo

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidPath(t *testing.T) {
	tests := []struct {
		path string
		err  string // a part of the error; "" for a valid path
	}{
		{"version", ""},
		{"a/b/version", ""},
		{"apps/web/deploy.yaml", ""},
		{".gitignore", ""},
		{".github/workflows/ci.yaml", ""},
		{".gitmodules", ""}, // refused by git only as a symlink
		{"git", ""},
		{".git-blame-ignore-revs", ""},
		{"a.git", ""},
		{"git~10", ""},
		{"git~2", ""},
		{"...", ""},
		{"..a", ""},
		{"a..", ""},
		{".g\u00eft", ""},  // not ASCII: no file system reads it as .git
		{".\u200bgit", ""}, // U+200B is not one HFS+ ignores
		{"日本語/ファイル", ""},
		{"with space/and:colon", ""},

		{"", "it is empty"},
		{"/etc/passwd", "absolute"},
		{"a\x00b", "NUL"},
		{`a\b`, "backslash"},
		{`..\evil`, "backslash"},
		{"a//b", "empty component"},
		{"a/", "empty component"},
		{".", `"." component`},
		{"./a", `"." component`},
		{"a/./b", `"." component`},
		{"..", `".." component`},
		{"../../evil", `".." component`},
		{"a/../../b", `".." component`},
		{".git", `".git" is read as .git`},
		{".git/config", `".git" is read as .git`},
		{"a/.git/hooks/pre-commit", `".git" is read as .git`},
		{".GIT/config", `".GIT" is read as .git`},
		{".Git", "read as .git"},
		{".git.", "read as .git"},
		{".git . .", "read as .git"},
		{".git::$INDEX_ALLOCATION/config", "read as .git"},
		{".git:stream", "read as .git"},
		{"git~1/config", "read as .git"},
		{"GIT~1", "read as .git"},
		{"Git~1. ", "read as .git"},
		{".g\u200cit", "read as .git"},
		{"\u200d.git", "read as .git"},
		{".gi\u202et", "read as .git"},
		{".git\u206a", "read as .git"},
		{"\ufeff.GiT/x", "read as .git"},
		{".g\u200cI\u200dt\u200e/hooks", "read as .git"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			err := ValidPath(tt.path)
			if tt.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.err)
			require.ErrorContains(t, err, "is not a path git accepts")
		})
	}
}

func TestValidBranchAndTag(t *testing.T) {
	valid := []string{"main", "version", "deploy/web", "release-1.2", "feature/JIRA-12_x", "v1.0.0+build.1", "a@b", "日本"}
	invalid := []string{
		"", "a\x00b", "a\tb", "a\x7fb", "a b", "~1", "a^", "a:b", "a?", "a*", "a[b", `a\b`,
		"a..b", "..", ".hidden", "a/.b", "x.lock", "a/x.lock/b", "@{-1}", "a@{u}", "@", "HEAD",
		"-x", "/a", "a/", "a//b", "a.",
	}
	for _, name := range valid {
		require.NoError(t, ValidBranch(name), name)
		require.NoError(t, ValidTag(name), name)
	}
	for _, name := range invalid {
		require.ErrorContains(t, ValidBranch(name), "is not a valid branch name", "%q", name)
		require.ErrorContains(t, ValidTag(name), "is not a valid tag name", "%q", name)
	}
}
