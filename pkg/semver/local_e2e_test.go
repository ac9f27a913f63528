package semver_test

import (
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/internal/gittest"
	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
)

// TestSemverLocalRemotes: a uri that is a local path, absolute or relative,
// works as its file:// URL does, for check, in and out: on a bare repository,
// on one that borrows its objects from another (objects/info/alternates, as
// git clone --shared makes), and on a non-bare one, all with a detached HEAD
// (a push then updates a branch no work tree has checked out).
func TestSemverLocalRemotes(t *testing.T) {
	t.Parallel()
	cwd, err := os.Getwd() // the binaries run in the test's directory
	require.NoError(t, err)
	for _, kind := range []string{"bare", "bare with alternates", "non-bare"} {
		for _, spelling := range []string{"absolute path", "relative path", "file URL"} {
			t.Run(kind+", "+spelling, func(t *testing.T) {
				t.Parallel()
				srv := gittest.New(t)
				srv.CreateRepo(t, "app")
				srv.Commit(t, "app", "main", map[string]string{"README": "app"}, "init")
				srv.Commit(t, "app", "version", map[string]string{"version": "0.9.0"}, "0.9.0")
				srv.Commit(t, "app", "version", map[string]string{"version": "1.0.0"}, "1.0.0")
				repo := srv.RepoPath("app")
				switch kind {
				case "bare with alternates":
					repo = filepath.Join(t.TempDir(), "shared.git")
					srv.Git(t, "app", "clone", "-q", "--bare", "--shared", srv.RepoPath("app"), repo)
				case "non-bare":
					repo = filepath.Join(t.TempDir(), "work")
					srv.Git(t, "app", "clone", "-q", srv.RepoPath("app"), repo)
					srv.Git(t, "app", "-C", repo, "branch", "version", "origin/version")
				}
				srv.Git(t, "app", "-C", repo, "update-ref", "--no-deref", "HEAD", "refs/heads/main")
				uri := repo
				switch spelling {
				case "relative path":
					uri, err = filepath.Rel(cwd, repo)
					require.NoError(t, err)
				case "file URL":
					uri = (&url.URL{Scheme: "file", Path: repo}).String()
				}
				src := map[string]any{"driver": "git", "uri": uri, "branch": "version", "file": "version"}
				env := map[string]string{"TMPDIR": t.TempDir()}

				var versions []map[string]string
				rt.Run(t, "check", "", map[string]any{"source": src}, env).OK(t, &versions)
				require.Equal(t, []map[string]string{{"number": "1.0.0"}}, versions)

				var out rt.Response
				rt.Run(t, "out", t.TempDir(), map[string]any{"source": src, "params": map[string]any{"bump": "minor"}}, env).OK(t, &out)
				require.Equal(t, "1.1.0", out.Version["number"])
				content := srv.Git(t, "app", "-C", repo, "show", "refs/heads/version:version")
				require.Equal(t, "1.1.0", content)
				require.Equal(t, out.Meta1("commit"), srv.Git(t, "app", "-C", repo, "rev-parse", "refs/heads/version"))
				require.Equal(t, "HEAD", srv.Git(t, "app", "-C", repo, "rev-parse", "--abbrev-ref", "HEAD"), "HEAD stays detached")

				rt.Run(t, "check", "", map[string]any{"source": src, "version": map[string]string{"number": "1.0.0"}}, env).OK(t, &versions)
				require.Equal(t, []map[string]string{{"number": "1.0.0"}, {"number": "1.1.0"}}, versions)

				dir := t.TempDir()
				rt.Run(t, "in", dir, map[string]any{"source": src, "version": map[string]string{"number": "1.1.0"}}, env).OK(t, &out)
				data, err := os.ReadFile(filepath.Join(dir, "version"))
				require.NoError(t, err)
				require.Equal(t, "1.1.0", string(data))
			})
		}
	}
}

// TestSemverLocalRemoteWithoutGit: the image has no git binaries, and
// go-git reaches a local repository through git-upload-pack and
// git-receive-pack. Without them a local uri is a config error naming the
// uri and what to use instead, before anything is tried.
func TestSemverLocalRemoteWithoutGit(t *testing.T) {
	t.Parallel()
	srv := gittest.New(t)
	srv.CreateRepo(t, "app")
	srv.Commit(t, "app", "version", map[string]string{"version": "1.0.0"}, "1.0.0")
	for _, uri := range []string{srv.RepoPath("app"), "file://" + srv.RepoPath("app")} {
		src := map[string]any{"driver": "git", "uri": uri, "branch": "version", "file": "version"}
		env := map[string]string{"TMPDIR": t.TempDir(), "PATH": t.TempDir()}
		rt.Run(t, "check", "", map[string]any{"source": src}, env).Fails(t, "source.uri", srv.RepoPath("app"), "git-upload-pack", "http")
	}
}
