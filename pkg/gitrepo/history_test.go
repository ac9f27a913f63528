package gitrepo_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/internal/gittest"
	"github.com/gitops-resource/gitops-resource/pkg/gitrepo"
)

// prefixes is a Pathspec of dirs and files: a file matches when it is one
// of them or lies under one (git's rule for a pathspec without wildcards).
type prefixes []string

func (p prefixes) Match(file string) bool {
	for _, x := range p {
		if file == x || strings.HasPrefix(file, x+"/") {
			return true
		}
	}
	return false
}

func (p prefixes) MayHold(dir string) bool {
	for _, x := range p {
		if p.Match(dir) || strings.HasPrefix(x, dir+"/") {
			return true
		}
	}
	return false
}

// The walk and Changed answer as `git log --first-parent --format=%H --
// <paths>` does on the server's repository, across adds, deletes, a file
// turned into a dir, a mode change, a merge, and a history three times
// the first fetch (which each walk reads past, fetching deeper).
func TestHistoryChangedAgreesWithGitLog(t *testing.T) {
	t.Parallel()
	srv := gittest.New(t)
	srv.CreateRepo(t, "r")
	srv.Commit(t, "r", "main", map[string]string{"a/x.yaml": "1", "a/b/y.yaml": "1", "c": "1", "Run.sh": "#!/bin/sh\n"}, "root")
	srv.SeedHistory(t, "r", "main", 25, func(i int) map[string]string {
		switch i % 5 {
		case 0:
			return map[string]string{"a/x.yaml": fmt.Sprint(i)}
		case 1:
			return map[string]string{"a/b/y.yaml": fmt.Sprint(i)}
		case 2:
			return map[string]string{"c": fmt.Sprint(i)}
		case 3:
			return map[string]string{fmt.Sprintf("a/b/new%d", i): "n"}
		}
		return nil // an empty commit
	})
	srv.Commit(t, "r", "main", map[string]string{"c": gittest.Deleted, "c/inner": "now a dir"}, "c becomes a dir")
	srv.Commit(t, "r", "main", map[string]string{"a/b/new3": gittest.Deleted}, "delete")
	// A mode change only: the root tree again, run.sh made executable.
	tip := srv.Tip(t, "r", "main")
	listing := strings.Replace(srv.Git(t, "r", "ls-tree", tip+"^{tree}"), "100644 blob", "100755 blob", 1)
	require.True(t, strings.HasPrefix(listing, "100755 blob"), "run.sh sorts first: %s", listing)
	mktree := exec.Command("git", "--git-dir", srv.RepoPath("r"), "mktree")
	mktree.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	mktree.Stdin = strings.NewReader(listing + "\n")
	newTree, err := mktree.Output()
	require.NoError(t, err)
	mode := srv.Git(t, "r", "commit-tree", strings.TrimSpace(string(newTree)), "-p", tip, "-m", "chmod")
	srv.Git(t, "r", "update-ref", "refs/heads/main", mode, tip)
	srv.Git(t, "r", "branch", "side", "main")
	srv.Commit(t, "r", "side", map[string]string{"a/x.yaml": "side"}, "side")
	side := srv.Tip(t, "r", "side")
	srv.SeedHistory(t, "r", "main", 5, func(i int) map[string]string { return map[string]string{"d": fmt.Sprint(i)} })
	mainTip := srv.Tip(t, "r", "main")
	merge := srv.Git(t, "r", "commit-tree", side+"^{tree}", "-p", mainTip, "-p", side, "-m", "merge")
	srv.Git(t, "r", "update-ref", "refs/heads/main", merge, mainTip)

	c, err := gitrepo.New(srv.HTTPURL("r"), gitrepo.Auth{})
	require.NoError(t, err)
	defer c.Close()
	for _, paths := range []prefixes{{"a"}, {"a/b"}, {"a/x.yaml"}, {"c"}, {"c/inner"}, {"a/b/new13"}, {"Run.sh"}, {"d", "a/b/y.yaml"}, {"nowhere"}} {
		t.Run(strings.Join(paths, "+"), func(t *testing.T) {
			want := strings.Fields(srv.Git(t, "r", append([]string{"log", "--first-parent", "--format=%H", "main", "--"}, paths...)...))
			h, err := c.History(context.Background(), "main", 10)
			require.NoError(t, err)
			defer h.Close()
			got := []string{}
			err = h.Walk(context.Background(), func(hc *gitrepo.HistoryCommit) error {
				changed, err := hc.Changed(paths)
				if changed {
					got = append(got, hc.Hash.String())
				}
				return err
			})
			require.NoError(t, err)
			if len(want) == 0 {
				want = []string{}
			}
			require.Equal(t, want, got)
		})
	}
	// The walk is the first-parent line, every commit of it.
	h, err := c.History(context.Background(), "main", 10)
	require.NoError(t, err)
	defer h.Close()
	var all []string
	require.NoError(t, h.Walk(context.Background(), func(hc *gitrepo.HistoryCommit) error {
		all = append(all, hc.Hash.String())
		return nil
	}))
	require.Equal(t, strings.Fields(srv.Git(t, "r", "rev-list", "--first-parent", "main")), all)
	require.NotContains(t, all, side)
}

// A branch that does not exist has no tip and an empty walk.
func TestHistoryOfAMissingBranch(t *testing.T) {
	t.Parallel()
	srv := gittest.New(t)
	srv.CreateRepo(t, "r")
	srv.Commit(t, "r", "main", map[string]string{"f": "1"}, "root")
	c, err := gitrepo.New(srv.HTTPURL("r"), gitrepo.Auth{})
	require.NoError(t, err)
	defer c.Close()
	h, err := c.History(context.Background(), "nope", 10)
	require.NoError(t, err)
	defer h.Close()
	require.True(t, h.Tip().IsZero())
	require.NoError(t, h.Walk(context.Background(), func(*gitrepo.HistoryCommit) error {
		t.Fatal("no commit expected")
		return nil
	}))
}

// ReadFile gives a file's content at each commit of the walk as `git show
// <commit>:<path>` does on the server: across changes, a delete, a file in
// a dir, an executable and a symlink (its target); a dir, a path through
// a file and a path that is not there are no file. A file larger than max
// is refused, naming it, without reading it; max itself is allowed.
func TestHistoryReadFile(t *testing.T) {
	t.Parallel()
	srv := gittest.New(t)
	srv.CreateRepo(t, "r")
	srv.Commit(t, "r", "main", map[string]string{"version": "1.0.0", "deep/er/file": "deep", "big": strings.Repeat("x", 100)}, "root")
	srv.SeedHistory(t, "r", "main", 14, func(i int) map[string]string {
		switch i % 3 {
		case 0:
			return map[string]string{"version": fmt.Sprintf("1.0.%d", i)}
		case 1:
			return map[string]string{"deep/er/file": fmt.Sprint(i)}
		}
		return nil
	})
	srv.Commit(t, "r", "main", map[string]string{"version": gittest.Deleted}, "delete")
	srv.Commit(t, "r", "main", map[string]string{"version": "2.0.0"}, "back")
	// An executable and a symlink, added by git itself.
	work := t.TempDir()
	srv.Git(t, "r", "clone", "-q", srv.RepoPath("r"), work)
	require.NoError(t, os.WriteFile(work+"/run.sh", []byte("#!/bin/sh"), 0o755))
	require.NoError(t, os.Symlink("deep/er/file", work+"/link"))
	srv.Git(t, "r", "-C", work, "add", "run.sh", "link")
	srv.Git(t, "r", "-C", work, "commit", "-qm", "exec and link")
	srv.Git(t, "r", "-C", work, "push", "-q", "origin", "HEAD:main")

	c, err := gitrepo.New(srv.HTTPURL("r"), gitrepo.Auth{})
	require.NoError(t, err)
	defer c.Close()
	h, err := c.History(context.Background(), "main", 4) // read past, fetching deeper
	require.NoError(t, err)
	defer h.Close()
	paths := []string{"version", "deep/er/file", "run.sh", "link", "/version", "deep", "deep/er", "version/x", "deep/er/file/x", "nowhere", "deep/nowhere"}
	commits := 0
	require.NoError(t, h.Walk(context.Background(), func(hc *gitrepo.HistoryCommit) error {
		commits++
		for _, p := range paths {
			object := hc.Hash.String() + ":" + strings.TrimPrefix(p, "/")
			typ, err := srv.GitErr("r", "cat-file", "-t", object)
			isFile := err == nil && typ == "blob"
			data, found, err := hc.ReadFile(p, 1<<10)
			require.NoError(t, err, "%s at %s", p, hc.Hash)
			require.Equal(t, isFile, found, "%s at %s", p, hc.Hash)
			if isFile { // no content ends in a newline, which GitErr trims
				require.Equal(t, srv.Git(t, "r", "cat-file", "blob", object), string(data), "%s at %s", p, hc.Hash)
			}
		}
		data, found, err := hc.ReadFile("big", 100)
		require.NoError(t, err)
		require.True(t, found)
		require.Len(t, data, 100)
		_, _, err = hc.ReadFile("big", 99)
		require.ErrorIs(t, err, gitrepo.ErrFileTooLarge)
		require.ErrorContains(t, err, "read big at "+hc.Hash.String()[:8]+": file too large to read (100 bytes, at most 99 are read)")
		return nil
	}))
	require.Equal(t, 18, commits)
}

// Each deepening fetch brings only the commits beyond what the history
// holds (and the trees and blobs they need), not the history again: a walk
// to the root holds each commit of the branch once, over HTTP and SSH. A
// branch that moves on between fetches keeps the first tip.
func TestHistoryDeepensInPlace(t *testing.T) {
	t.Parallel()
	srv := gittest.New(t)
	clients := map[string]func(repo string) (*gitrepo.Client, error){
		"http": func(repo string) (*gitrepo.Client, error) {
			return gitrepo.New(srv.HTTPURL(repo), gitrepo.Auth{})
		},
		"ssh": func(repo string) (*gitrepo.Client, error) {
			return gitrepo.New(srv.SSHURL(repo), gitrepo.Auth{PrivateKey: string(srv.ClientKey()), KnownHosts: srv.KnownHosts()})
		},
	}
	for name, open := range clients {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv.CreateRepo(t, name)
			files := map[string]string{}
			for i := range 30 {
				files[fmt.Sprintf("apps/app%02d/deploy.yaml", i)] = fmt.Sprintf("image: app%d:1\n", i)
			}
			srv.Commit(t, name, "main", files, "root")
			srv.SeedHistory(t, name, "main", 60, func(i int) map[string]string {
				return map[string]string{fmt.Sprintf("apps/app%02d/deploy.yaml", (i*7)%30): fmt.Sprintf("image: app:%d\n", i)}
			})
			tip := srv.Tip(t, name, "main")
			want := strings.Fields(srv.Git(t, name, "log", "--first-parent", "--format=%H", "main", "--", "apps/app03"))
			commits := len(strings.Fields(srv.Git(t, name, "rev-list", "main")))
			c, err := open(name)
			require.NoError(t, err)
			defer c.Close()
			hist, err := c.History(context.Background(), "main", 5)
			require.NoError(t, err)
			defer hist.Close()
			got := []string{}
			moved := false
			require.NoError(t, hist.Walk(context.Background(), func(hc *gitrepo.HistoryCommit) error {
				if !moved { // another writer, after the first fetch
					srv.Commit(t, name, "main", map[string]string{"apps/app03/deploy.yaml": "image: later\n"}, "later")
					moved = true
				}
				changed, err := hc.Changed(prefixes{"apps/app03"})
				if changed {
					got = append(got, hc.Hash.String())
				}
				return err
			}))
			require.Equal(t, want, got)
			require.Equal(t, tip, hist.Tip().String())
			// The later commit may come along with a deepening, and git
			// sends again each commit a deepening unshallows (5, 15, 45:
			// three); nothing else twice. Fetching afresh each time held
			// 5+15+45+61.
			held, err := gitrepo.HistoryCommits(hist)
			require.NoError(t, err)
			require.GreaterOrEqual(t, held, commits)
			require.LessOrEqual(t, held, commits+1+3, "commits held, of %d on the branch", commits)
		})
	}
}
