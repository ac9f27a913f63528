package giteatest_test

import (
	"os"
	"strings"
	"testing"

	"code.gitea.io/sdk/gitea"
	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/internal/testenv/giteatest"
)

var suite giteatest.Suite

func TestMain(m *testing.M) { suite.Main(m) }

func tailOnFailure(t *testing.T, srv *giteatest.Server) {
	t.Cleanup(func() {
		if t.Failed() {
			data, _ := os.ReadFile(srv.Log())
			lines := strings.Split(string(data), "\n")
			t.Logf("gitea log:\n%s", strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	})
}

// The harness itself: a Gitea on loopback only, a repository with files,
// the helpers a test of pull requests needs.
func TestServer(t *testing.T) {
	t.Parallel()
	srv := suite.Server(t)
	tailOnFailure(t, srv)
	p, err := srv.Listeners()
	require.NoError(t, err)
	for _, a := range p {
		require.True(t, strings.HasPrefix(a, "127.0.0.1:"), "gitea listens on %s", a)
	}
	t.Logf("gitea RSS: %d MB", srv.RSS()>>20)

	repo := srv.CreateRepo(t, map[string]string{"app.yaml": "image: nginx:1.0\n", "dir/b.yaml": "b\n"})
	main := repo.Tip(t, "main")
	require.Len(t, main, 40)
	require.Equal(t, "b\n", repo.ReadFile(t, "main", "dir/b.yaml"))
	require.Empty(t, repo.Tip(t, "nope"))

	head := repo.PutFile(t, "feature", "app.yaml", "image: nginx:1.1\n")
	require.Equal(t, head, repo.Tip(t, "feature"))
	require.Equal(t, main, repo.Tip(t, "main"))
	require.Equal(t, "image: nginx:1.1\n", repo.ReadFile(t, "feature", "app.yaml"))
	repo.SetStatus(t, head, "ci/test", "success", "ok")

	pr, _, err := srv.Client(t).CreatePullRequest(repo.Owner, repo.Name, giteaPR("feature"))
	require.NoError(t, err)
	merge := repo.MergeByHand(t, int(pr.Index))
	require.Equal(t, merge, repo.Tip(t, "main"))
	require.Equal(t, "image: nginx:1.1\n", repo.ReadFile(t, "main", "app.yaml"))

	reader := repo.ReadOnlyUser(t)
	require.NotEmpty(t, reader.Token)
	_, _, err = srv.ClientAs(t, reader.Token).GetRepo(repo.Owner, repo.Name)
	require.NoError(t, err, "a reader reads")
}

func giteaPR(head string) gitea.CreatePullRequestOption {
	return gitea.CreatePullRequestOption{Head: head, Base: "main", Title: "change"}
}
