package manifest_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/internal/gittest"
	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
)

// treeEntry is one blob of a tree built with git plumbing: its path, mode
// (100644 or 100755) and content.
type treeEntry struct{ path, mode, content string }

// plumber builds commits whose trees `git add` would never make (paths such
// as .git/config), with hash-object, mktree and commit-tree, in a scratch
// repository of its own, and pushes them to a real server.
type plumber struct{ dir string }

func newPlumber(t *testing.T) plumber {
	t.Helper()
	p := plumber{dir: t.TempDir()}
	p.git(t, "", "init", "--quiet", "--bare", ".")
	return p
}

func (p plumber) git(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = p.dir
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + p.dir, "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=mallory", "GIT_AUTHOR_EMAIL=mallory@example.invalid", "GIT_COMMITTER_NAME=mallory", "GIT_COMMITTER_EMAIL=mallory@example.invalid"}
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// tree writes the entries (paths relative to dir) as trees and returns the
// hash of the one at dir.
func (p plumber) tree(t *testing.T, entries []treeEntry) string {
	t.Helper()
	blobs := map[string]treeEntry{}
	subs := map[string][]treeEntry{}
	for _, e := range entries {
		first, rest, nested := strings.Cut(e.path, "/")
		if !nested {
			blobs[first] = e
			continue
		}
		subs[first] = append(subs[first], treeEntry{rest, e.mode, e.content})
	}
	var lines []string
	for name, e := range blobs {
		lines = append(lines, fmt.Sprintf("%s blob %s\t%s", e.mode, p.git(t, e.content, "hash-object", "-w", "--stdin"), name))
	}
	for name, es := range subs {
		lines = append(lines, fmt.Sprintf("040000 tree %s\t%s", p.tree(t, es), name))
	}
	sort.Strings(lines)
	return p.git(t, strings.Join(lines, "\n")+"\n", "mktree")
}

// push commits the entries as the root commit of branch on url and returns
// the commit.
func (p plumber) push(t *testing.T, url, branch string, entries []treeEntry) string {
	t.Helper()
	sha := p.git(t, "", "commit-tree", "-m", "innocent-looking change", p.tree(t, entries))
	p.git(t, "", "push", "--quiet", url, sha+":refs/heads/"+branch)
	return sha
}

// TestInRefusesTreesThatPlantAGitDir: a config repo whose commit holds
// .git/config (core.fsmonitor), .git/hooks/*, or the spellings of .git that
// Windows and macOS file systems read as .git, is refused by `in` as git's
// own checkout refuses it: the get fails naming each path and the commit,
// writes nothing, and the next task running git in the get dir runs nothing
// of the attacker's. Trees that only look alike check out.
func TestInRefusesTreesThatPlantAGitDir(t *testing.T) {
	t.Parallel()
	srv := gittest.New(t)
	srv.CreateRepo(t, "deploy")
	url := srv.HTTPURL("deploy")
	plumb := newPlumber(t)
	deploy := treeEntry{"app/web.yaml", "100644", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: web\n    image: acme/web:1.0.0\n"}

	// The repo a hostile .git/config makes of the get dir: any git command
	// there runs core.fsmonitor, which leaves marker behind; so would
	// checking out a branch there run the hook.
	planted := func(marker string) []treeEntry {
		return []treeEntry{deploy,
			{".git/config", "100644", "[core]\n\trepositoryformatversion = 0\n\tfsmonitor = touch " + marker + " #\n"},
			{".git/HEAD", "100644", "ref: refs/heads/main\n"},
			{".git/objects/info/.keep", "100644", ""},
			{".git/refs/heads/.keep", "100644", ""},
			{".git/hooks/post-checkout", "100755", "#!/bin/sh\ntouch " + marker + "\n"},
		}
	}
	other := func(p, mode string) func(string) []treeEntry {
		return func(string) []treeEntry { return []treeEntry{deploy, {p, mode, "[core]\n"}} }
	}
	tests := []struct {
		name    string
		entries func(marker string) []treeEntry
		refused []string
	}{
		{"a .git dir with core.fsmonitor and a hook", planted, []string{`".git/config"`, `".git/HEAD"`, `".git/hooks/post-checkout"`}},
		{"a hook alone", other(".git/hooks/post-checkout", "100755"), []string{`".git/hooks/post-checkout"`}},
		{".GIT, for case-insensitive file systems", other(".GIT/config", "100644"), []string{`".GIT/config"`}},
		{".git with a trailing space, which NTFS drops", other(".git /config", "100644"), []string{`".git /config"`}},
		{"git~1, the NTFS short name of .git", other("app/git~1/config", "100644"), []string{`"app/git~1/config"`}},
		{".git with trailing dots", other(".git../hooks/pre-commit", "100755"), []string{`".git../hooks/pre-commit"`}},
		{".git behind HFS+ ignorable code points", other(".g\u200cit/config", "100644"), []string{`".g\u200cit/config"`}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			branch := fmt.Sprintf("hostile-%d", i)
			marker := filepath.Join(t.TempDir(), "PWNED")
			sha := plumb.push(t, url, branch, tt.entries(marker))
			dir := t.TempDir()
			res := rt.Run(t, "in", dir, map[string]any{"source": map[string]any{"kind": "manifest", "uri": url, "branch": branch}, "version": map[string]string{"ref": sha}}, nil)

			// What the next task in this dir would do: any git command.
			status := exec.Command("git", "status", "--porcelain")
			status.Dir = dir
			status.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1", "GIT_CEILING_DIRECTORIES=" + filepath.Dir(dir)}
			status.Run() // fails on a dir that is not a repository, as it should
			assert.NoFileExists(t, marker, "git status in the get dir ran the commit's core.fsmonitor")

			res.Fails(t, append([]string{sha[:12], "refusing the tree, nothing written"}, tt.refused...)...)
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Empty(t, entries, "a refused tree writes nothing to the get dir")
		})
	}

	t.Run("names that only look like .git check out", func(t *testing.T) {
		t.Parallel()
		lookalikes := []treeEntry{deploy,
			{".gitignore", "100644", "*.tmp\n"},
			{".github/workflows/ci.yaml", "100644", "on: push\n"},
			{".gitx/config", "100644", "x\n"},
			{"git~2/config", "100644", "x\n"},
			{"app/..yaml", "100644", "x\n"},
			{"app/a.git/config", "100644", "x\n"},
		}
		sha := plumb.push(t, url, "lookalikes", lookalikes)
		dir := t.TempDir()
		rt.Run(t, "in", dir, map[string]any{"source": map[string]any{"kind": "manifest", "uri": url, "branch": "lookalikes"}, "version": map[string]string{"ref": sha}}, nil).OK(t, nil)
		for _, e := range lookalikes {
			data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(e.path)))
			require.NoError(t, err, e.path)
			require.Equal(t, e.content, string(data), e.path)
		}
		ref, err := os.ReadFile(filepath.Join(dir, ".git", "ref"))
		require.NoError(t, err)
		require.Equal(t, sha+"\n", string(ref), "in writes .git/ref, on purpose")
		require.Equal(t, sha, gitIn(t, dir, "rev-parse", "HEAD"), "in a repository of its own making")
	})
}

// TestPutReadsNoFileOutsideTheBuildDir: a registry-image get dir whose tag
// file is a symlink to a file outside the build dir fails the put naming
// the field and the file, and nothing is pushed; a from dir reached
// through a symlink inside the build dir still works.
func TestPutReadsNoFileOutsideTheBuildDir(t *testing.T) {
	t.Parallel()
	deploy := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: acme/web:1.0.0\n"
	secret := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secret, []byte("s3cr3t-from-the-worker\n"), 0o600))

	build := func(t *testing.T, links map[string]string) string {
		dir := t.TempDir()
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "image"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "image", "repository"), []byte("acme/web\n"), 0o644))
		for link, target := range links {
			require.NoError(t, os.Symlink(target, filepath.Join(dir, link)))
		}
		return dir
	}
	t.Run("tag file linked out", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, map[string]string{"app/web.yaml": deploy})
		dir := build(t, map[string]string{"image/tag": secret})
		_, res := f.putIn(t, dir, f.source(nil), map[string]any{"images": []map[string]any{{"from": "image"}}})
		res.Fails(t, "params.images[0].from: image/tag is, or passes through, a symlink that leaves the build dir")
		require.NotContains(t, res.Stderr, "s3cr3t")
		require.NotContains(t, res.Stderr, "neither a tag nor a digest", "only the real problem is reported")
		require.Equal(t, f.seed, f.srv.Tip(t, "deploy", "main"), "nothing pushed")
		require.Equal(t, deploy, f.read(t, "app/web.yaml"))
	})
	t.Run("from dir linked inside", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, map[string]string{"app/web.yaml": deploy})
		dir := build(t, map[string]string{"current": "image"})
		require.NoError(t, os.WriteFile(filepath.Join(dir, "image", "tag"), []byte("2.0.0\n"), 0o644))
		_, res := f.putIn(t, dir, f.source(nil), map[string]any{"images": []map[string]any{{"from": "current"}}})
		res.OK(t, nil)
		require.Contains(t, f.read(t, "app/web.yaml"), "image: acme/web:2.0.0")
	})
}
