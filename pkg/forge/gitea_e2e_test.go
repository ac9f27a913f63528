package forge_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/internal/proc"
	"github.com/gitops-resource/gitops-resource/internal/testenv/giteatest"
	"github.com/gitops-resource/gitops-resource/pkg/forge"
	"github.com/gitops-resource/gitops-resource/pkg/retry"
)

var giteaSuite giteatest.Suite

func TestMain(m *testing.M) { giteaSuite.Main(m) }

// mergeBackoff retries Gitea's transient merge refusals for up to ~20 s.
var mergeBackoff = retry.Backoff{Attempts: 20, Base: 200 * time.Millisecond, Max: 2 * time.Second}

// giteaRepo is a new repository on the suite's Gitea, with app.yaml on
// main, and a forge client of it acting as the admin.
func giteaRepo(t *testing.T) (*giteatest.Server, *giteatest.Repo, forge.Forge) {
	t.Helper()
	srv := giteaSuite.Server(t)
	repo := srv.CreateRepo(t, map[string]string{"app.yaml": "image: nginx:1.0\n", "other.yaml": "image: redis:7\n"})
	return srv, repo, newGitea(t, repo, srv.Token)
}

func newGitea(t *testing.T, repo *giteatest.Repo, token string) forge.Forge {
	t.Helper()
	f, err := forge.New(forge.Config{Type: forge.TypeGitea, Token: token, RepoURL: repo.CloneURL}, nil)
	require.NoError(t, err)
	return f
}

// openPR pushes a change of path to head (through the API) and opens a
// pull request from it into main.
func openPR(t *testing.T, repo *giteatest.Repo, f forge.Forge, head, path, content string) *forge.PullRequest {
	t.Helper()
	repo.PutFile(t, head, path, content)
	pr, err := f.Open(t.Context(), forge.NewPullRequest{Title: "update " + path, Body: "body", Head: head, Base: "main"})
	require.NoError(t, err)
	return pr
}

func TestGiteaOpenFindUpdateGet(t *testing.T) {
	t.Parallel()
	srv, repo, f := giteaRepo(t)
	ctx := t.Context()

	none, err := f.FindOpen(ctx, "gitops/nginx", "main")
	require.NoError(t, err)
	require.Nil(t, none)

	head := repo.PutFile(t, "gitops/nginx", "app.yaml", "image: nginx:1.1\n")
	pr, err := f.Open(ctx, forge.NewPullRequest{
		Title: "nginx 1.1", Body: "| image | from | to |", Head: "gitops/nginx", Base: "main", Labels: []string{"gitops", "images"},
	})
	require.NoError(t, err)
	require.Equal(t, forge.Open, pr.State)
	require.Equal(t, "gitops/nginx", pr.Head)
	require.Equal(t, "main", pr.Base)
	require.Equal(t, head, pr.HeadSHA)
	require.Equal(t, fmt.Sprintf("%s/%s/pulls/%d", srv.URL, repo.FullName(), pr.Number), pr.URL)
	require.Equal(t, []string{"gitops", "images"}, labels(t, repo, pr.Number))

	found, err := f.FindOpen(ctx, "gitops/nginx", "main")
	require.NoError(t, err)
	require.Equal(t, pr, found)
	other, err := f.FindOpen(ctx, "gitops/nginx", "release")
	require.NoError(t, err)
	require.Nil(t, other, "a pull request into another base is not ours")

	updated, err := f.Update(ctx, pr.Number, forge.NewPullRequest{
		Title: "nginx 1.2", Body: "new body", Head: "gitops/nginx", Base: "main", Labels: []string{"images", "urgent"},
	})
	require.NoError(t, err)
	require.Equal(t, pr.Number, updated.Number)
	got := repo.PullRequest(t, pr.Number)
	require.Equal(t, "nginx 1.2", got.Title)
	require.Equal(t, "new body", got.Body)
	require.Equal(t, []string{"images", "urgent"}, labels(t, repo, pr.Number))

	same, err := f.Get(ctx, pr.Number)
	require.NoError(t, err)
	require.Equal(t, pr, same)

	_, err = f.Open(ctx, forge.NewPullRequest{Title: "again", Head: "gitops/nginx", Base: "main"})
	require.Error(t, err, "a second pull request for the same branches")
	require.False(t, retry.IsRetryable(err), "%v", err)

	_, err = f.Get(ctx, 9999)
	require.ErrorContains(t, err, "404")
	require.ErrorContains(t, err, srv.URL[len("http://"):])
}

func labels(t *testing.T, repo *giteatest.Repo, number int) []string {
	t.Helper()
	var names []string
	for _, l := range repo.PullRequest(t, number).Labels {
		names = append(names, l.Name)
	}
	slices.Sort(names)
	return names
}

func TestGiteaChecks(t *testing.T) {
	t.Parallel()
	_, repo, f := giteaRepo(t)
	ctx := t.Context()
	sha := repo.Tip(t, "main")

	checks, err := f.Checks(ctx, sha)
	require.NoError(t, err)
	require.Equal(t, forge.Checks{State: forge.None}, checks)

	repo.SetStatus(t, sha, "ci/test", "pending", "running")
	checks, err = f.Checks(ctx, sha)
	require.NoError(t, err)
	require.Equal(t, forge.Checks{State: forge.Pending, Lines: []string{"ci/test: pending: running"}}, checks)

	repo.SetStatus(t, sha, "ci/test", "success", "")
	checks, err = f.Checks(ctx, sha)
	require.NoError(t, err)
	require.Equal(t, forge.Checks{State: forge.Success, Lines: []string{"ci/test: success"}}, checks)

	repo.SetStatus(t, sha, "ci/lint", "failure", "2 problems")
	checks, err = f.Checks(ctx, sha)
	require.NoError(t, err)
	require.Equal(t, forge.Checks{State: forge.Failure, Lines: []string{"ci/lint: failure: 2 problems", "ci/test: success"}}, checks)

	repo.SetStatus(t, sha, "ci/lint", "warning", "")
	checks, err = f.Checks(ctx, sha)
	require.NoError(t, err)
	require.Equal(t, forge.Failure, checks.State, "Gitea counts a warning as a failure")
}

func TestGiteaMergeMethods(t *testing.T) {
	t.Parallel()
	for _, method := range []forge.MergeMethod{forge.MergeCommit, forge.Squash, forge.Rebase} {
		t.Run(string(method), func(t *testing.T) {
			t.Parallel()
			_, repo, f := giteaRepo(t)
			pr := openPR(t, repo, f, "gitops/"+string(method), "app.yaml", "image: nginx:2\n")
			err := mergeBackoff.Do(t.Context(), t.Output(), "merge", func() error {
				return f.Merge(t.Context(), pr.Number, method, pr.HeadSHA)
			})
			require.NoError(t, err)

			got, err := f.Get(t.Context(), pr.Number)
			require.NoError(t, err)
			require.Equal(t, forge.Merged, got.State)
			require.Equal(t, repo.Tip(t, "main"), got.MergeCommit)
			require.Equal(t, "image: nginx:2\n", repo.ReadFile(t, "main", "app.yaml"))
			if method != forge.Rebase { // a rebase of one commit on main's tip fast-forwards
				require.NotEqual(t, pr.HeadSHA, got.MergeCommit, "a new commit on main")
			}
		})
	}
}

// Two merges into one base back to back: Gitea re-checks the second pull
// request after the first lands and refuses to merge it meanwhile with 405
// "Please try again later", which Merge reports as retryable.
func TestGiteaMergeRetriesTheTransientRefusal(t *testing.T) {
	t.Parallel()
	_, repo, f := giteaRepo(t)
	ctx := t.Context()
	first := openPR(t, repo, f, "gitops/nginx", "app.yaml", "image: nginx:3\n")
	second := openPR(t, repo, f, "gitops/redis", "other.yaml", "image: redis:8\n")

	var refusals []error
	for _, pr := range []*forge.PullRequest{first, second} {
		err := mergeBackoff.Do(ctx, t.Output(), fmt.Sprintf("merge #%d", pr.Number), func() error {
			err := f.Merge(ctx, pr.Number, forge.MergeCommit, pr.HeadSHA)
			if err != nil {
				require.True(t, retry.IsRetryable(err), "only the transient refusal may fail a merge here: %v", err)
				refusals = append(refusals, err)
			}
			return err
		})
		require.NoError(t, err)
	}
	// Gitea refuses a merge for about 2 s after another one into the same
	// base, but not always (it depends on how fast its queue ran): when it
	// did, the refusal was the transient 405, and it was retried.
	if len(refusals) == 0 {
		t.Log("Gitea merged the second pull request at once this time: no refusal to retry")
	}
	for _, err := range refusals {
		require.ErrorContains(t, err, "405")
		require.ErrorContains(t, err, "try again later")
	}
	require.Equal(t, "image: nginx:3\n", repo.ReadFile(t, "main", "app.yaml"))
	require.Equal(t, "image: redis:8\n", repo.ReadFile(t, "main", "other.yaml"))
}

func TestGiteaMergeRefusesAMovedHead(t *testing.T) {
	t.Parallel()
	_, repo, f := giteaRepo(t)
	pr := openPR(t, repo, f, "gitops/nginx", "app.yaml", "image: nginx:4\n")
	moved := repo.PutFile(t, "gitops/nginx", "app.yaml", "image: nginx:5\n")
	require.NotEqual(t, pr.HeadSHA, moved)

	var err error
	_ = mergeBackoff.Do(t.Context(), t.Output(), "merge", func() error {
		err = f.Merge(t.Context(), pr.Number, forge.MergeCommit, pr.HeadSHA)
		return err
	})
	require.Error(t, err)
	require.False(t, retry.IsRetryable(err))
	require.ErrorContains(t, err, "head")
	got, gerr := f.Get(t.Context(), pr.Number)
	require.NoError(t, gerr)
	require.Equal(t, forge.Open, got.State)
}

func TestGiteaStatesClosedAndMergedByHand(t *testing.T) {
	t.Parallel()
	_, repo, f := giteaRepo(t)
	ctx := t.Context()
	closed := openPR(t, repo, f, "gitops/nginx", "app.yaml", "image: nginx:6\n")
	repo.Close(t, closed.Number)
	got, err := f.Get(ctx, closed.Number)
	require.NoError(t, err)
	require.Equal(t, forge.Closed, got.State)
	none, err := f.FindOpen(ctx, "gitops/nginx", "main")
	require.NoError(t, err)
	require.Nil(t, none, "a closed pull request is not open")

	merged := openPR(t, repo, f, "gitops/redis", "other.yaml", "image: redis:9\n")
	commit := repo.MergeByHand(t, merged.Number)
	got, err = f.Get(ctx, merged.Number)
	require.NoError(t, err)
	require.Equal(t, forge.Merged, got.State)
	require.Equal(t, commit, got.MergeCommit)
	require.Equal(t, repo.Tip(t, "main"), got.MergeCommit)
	require.NoError(t, f.Merge(ctx, merged.Number, forge.MergeCommit, merged.HeadSHA), "merged already is merged")

	err = f.Merge(ctx, closed.Number, forge.MergeCommit, closed.HeadSHA)
	require.ErrorContains(t, err, "closed or does not exist")
	require.False(t, retry.IsRetryable(err))
}

// Gitea 1.27's "merge when checks succeed": scheduled while the required
// status is pending, merged by Gitea once it succeeds.
func TestGiteaAutoMerge(t *testing.T) {
	t.Parallel()
	_, repo, f := giteaRepo(t)
	ctx := t.Context()
	repo.Protect(t, "main", "ci/test")
	pr := openPR(t, repo, f, "gitops/nginx", "app.yaml", "image: nginx:7\n")
	repo.SetStatus(t, pr.HeadSHA, "ci/test", "pending", "")

	require.NoError(t, mergeBackoff.Do(ctx, t.Output(), "auto-merge", func() error {
		return f.AutoMerge(ctx, pr.Number, forge.Squash, pr.HeadSHA)
	}))
	require.NoError(t, f.AutoMerge(ctx, pr.Number, forge.Squash, pr.HeadSHA), "scheduling twice is fine")
	got, err := f.Get(ctx, pr.Number)
	require.NoError(t, err)
	require.Equal(t, forge.Open, got.State, "not merged while ci/test is pending")

	repo.SetStatus(t, pr.HeadSHA, "ci/test", "success", "")
	wait, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	require.NoError(t, proc.Poll(wait, "the auto-merge", nil, func(ctx context.Context) error {
		got, err = f.Get(ctx, pr.Number)
		if err != nil {
			return err
		}
		if got.State != forge.Merged {
			return fmt.Errorf("state %s", got.State)
		}
		return nil
	}))
	require.Equal(t, repo.Tip(t, "main"), got.MergeCommit)
	require.Equal(t, "image: nginx:7\n", repo.ReadFile(t, "main", "app.yaml"))
}

func TestGiteaTokenWithoutRights(t *testing.T) {
	t.Parallel()
	srv, repo, admin := giteaRepo(t)
	ctx := t.Context()
	host := strings.TrimPrefix(srv.URL, "http://")
	reader := repo.ReadOnlyUser(t)
	f := newGitea(t, repo, reader.Token)
	repo.PutFile(t, "gitops/nginx", "app.yaml", "image: nginx:8\n")

	noLeak := func(err error) {
		t.Helper()
		require.Error(t, err)
		require.False(t, retry.IsRetryable(err), "%v", err)
		require.ErrorContains(t, err, host)
		require.NotContains(t, err.Error(), reader.Token)
		require.NotContains(t, err.Error(), srv.Token)
	}

	// It may read.
	_, err := f.FindOpen(ctx, "gitops/nginx", "main")
	require.NoError(t, err)

	// Gitea lets a reader open a pull request, not label it.
	_, err = f.Open(ctx, forge.NewPullRequest{Title: "t", Head: "gitops/nginx", Base: "main", Labels: []string{"gitops"}})
	noLeak(err)
	require.ErrorContains(t, err, "write access to "+repo.FullName())
	t.Logf("open as a reader: %v", err)

	pr, err := admin.Open(ctx, forge.NewPullRequest{Title: "t", Head: "gitops/nginx", Base: "main"})
	require.NoError(t, err)
	_, err = f.Update(ctx, pr.Number, forge.NewPullRequest{Title: "mine now", Head: "gitops/nginx", Base: "main"})
	noLeak(err)
	require.ErrorContains(t, err, "403 Forbidden: check source.forge.token")
	t.Logf("update as a reader: %v", err)
	err = mergeBackoff.Do(ctx, t.Output(), "merge", func() error {
		return f.Merge(ctx, pr.Number, forge.MergeCommit, pr.HeadSHA)
	})
	noLeak(err)
	require.ErrorContains(t, err, "not allowed to merge")
	require.ErrorContains(t, err, "write access to "+repo.FullName())
	t.Logf("merge as a reader: %v", err)

	// A read-only token of a user who could write.
	writer := srv.CreateUser(t, "read:repository", "read:issue")
	repo.AddCollaborator(t, writer.Name, "write")
	_, err = newGitea(t, repo, writer.Token).Update(ctx, pr.Number, forge.NewPullRequest{Title: "x", Head: "gitops/nginx", Base: "main"})
	noLeak(err)
	require.ErrorContains(t, err, "403")
	require.ErrorContains(t, err, "write:")
	t.Logf("update with a read-only token: %v", err)

	_, err = newGitea(t, repo, "not-a-token").Get(ctx, pr.Number)
	noLeak(err)
	require.ErrorContains(t, err, "401")
	require.ErrorContains(t, err, "check source.forge.token")
}

// A 5xx is retryable; the body of a refusal never carries the token.
func TestGiteaServerErrorsAreRetryable(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("upstream down"))
	}))
	t.Cleanup(srv.Close)
	f, err := forge.New(forge.Config{Type: forge.TypeGitea, Token: "s3cret", RepoURL: srv.URL + "/o/r.git"}, nil)
	require.NoError(t, err)
	_, err = f.Get(t.Context(), 1)
	require.Error(t, err)
	require.True(t, retry.IsRetryable(err), "%v", err)
	require.NotContains(t, err.Error(), "s3cret")
	require.ErrorContains(t, err, strings.TrimPrefix(srv.URL, "http://"))
	require.ErrorContains(t, err, "502 Bad Gateway: upstream down")
	require.NotContains(t, err.Error(), "\n")
	err = f.Merge(t.Context(), 1, forge.MergeCommit, "abc")
	require.True(t, retry.IsRetryable(err), "%v", err)
	require.ErrorContains(t, err, "502")
	require.Equal(t, int32(2), hits.Load())
}
