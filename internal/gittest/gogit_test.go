package gittest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-git/go-billy/v5/memfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage/memory"
	"github.com/stretchr/testify/require"
)

// goGitRoundTrip clones url with go-git, commits a file and pushes it, as
// pkg/gitrepo will.
func goGitRoundTrip(t *testing.T, s *Server, url string, auth transport.AuthMethod) {
	t.Helper()
	first := s.Commit(t, "app", "main", map[string]string{"version": "1.0.0"}, "first")
	fs := memfs.New()
	repo, err := git.Clone(memory.NewStorage(), fs, &git.CloneOptions{URL: url, Auth: auth})
	require.NoError(t, err)
	head, err := repo.Head()
	require.NoError(t, err)
	require.Equal(t, first, head.Hash().String())

	wt, err := repo.Worktree()
	require.NoError(t, err)
	f, err := fs.Create("version")
	require.NoError(t, err)
	_, err = f.Write([]byte("1.1.0"))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	_, err = wt.Add("version")
	require.NoError(t, err)
	sig := &object.Signature{Name: "go-git", Email: "go-git@example.invalid", When: time.Now()}
	sha, err := wt.Commit("bump to 1.1.0", &git.CommitOptions{Author: sig})
	require.NoError(t, err)
	require.NoError(t, repo.Push(&git.PushOptions{Auth: auth}))

	require.Equal(t, sha.String(), s.Tip(t, "app", "main"))
	got, _ := s.ReadFile(t, "app", "main", "version")
	require.Equal(t, "1.1.0", got)
}

func TestGoGitHTTP(t *testing.T) {
	t.Parallel()
	s := New(t, WithBasicAuth("ci", "token"))
	s.CreateRepo(t, "app")
	goGitRoundTrip(t, s, s.HTTPURL("app"), &githttp.BasicAuth{Username: "ci", Password: "token"})

	_, err := git.Clone(memory.NewStorage(), nil, &git.CloneOptions{
		URL: s.HTTPURL("app"), Auth: &githttp.BasicAuth{Username: "ci", Password: "wrong"},
	})
	require.ErrorIs(t, err, transport.ErrAuthenticationRequired)
}

func TestGoGitSSH(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.CreateRepo(t, "app")
	knownHosts := func(line string) string {
		p := filepath.Join(t.TempDir(), "known_hosts")
		require.NoError(t, os.WriteFile(p, []byte(line), 0o600))
		return p
	}

	auth, err := gitssh.NewPublicKeys("git", s.ClientKeyWithPassphrase("pw"), "pw")
	require.NoError(t, err)
	auth.HostKeyCallback, err = gitssh.NewKnownHostsCallback(knownHosts(s.KnownHosts()))
	require.NoError(t, err)
	goGitRoundTrip(t, s, s.SSHURL("app"), auth)

	bad, err := gitssh.NewPublicKeys("git", s.ClientKey(), "")
	require.NoError(t, err)
	bad.HostKeyCallback, err = gitssh.NewKnownHostsCallback(knownHosts(s.KnownHostsMismatch()))
	require.NoError(t, err)
	_, err = git.Clone(memory.NewStorage(), nil, &git.CloneOptions{URL: s.SSHURL("app"), Auth: bad})
	require.ErrorContains(t, err, "key mismatch")

	wrong, err := gitssh.NewPublicKeys("git", NewKey(t), "")
	require.NoError(t, err)
	wrong.HostKeyCallback, err = gitssh.NewKnownHostsCallback(knownHosts(s.KnownHosts()))
	require.NoError(t, err)
	_, err = git.Clone(memory.NewStorage(), nil, &git.CloneOptions{URL: s.SSHURL("app"), Auth: wrong})
	require.ErrorContains(t, err, "unable to authenticate")
}
