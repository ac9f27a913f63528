package manifest_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"
	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/internal/proc"
	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
	"github.com/gitops-resource/gitops-resource/internal/testenv/giteatest"
)

// The pull-request puts of this file run the binary against one real Gitea
// (internal/testenv/giteatest), each subtest on its own repository.

const (
	prWeb = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n" +
		"      - name: web\n        image: ghcr.io/acme/web:1.0.0 # pinned by CI\n"
	prAPI = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  template:\n    spec:\n      containers:\n" +
		"      - name: api\n        image: ghcr.io/acme/api:1.0.0\n"
)

// prFixture is a Gitea repository holding apps/web.yaml and apps/api.yaml
// on main.
type prFixture struct {
	srv  *giteatest.Server
	repo *giteatest.Repo
	// outputs collects every run's stdout and stderr, for NoSecrets.
	mu      sync.Mutex
	results []rt.Result
}

func newPRFixture(t *testing.T, srv *giteatest.Server) *prFixture {
	t.Helper()
	repo := srv.CreateRepo(t, map[string]string{"apps/web.yaml": prWeb, "apps/api.yaml": prAPI})
	fx := &prFixture{srv: srv, repo: repo}
	t.Cleanup(func() {
		fx.mu.Lock()
		defer fx.mu.Unlock()
		for _, r := range fx.results {
			r.NoSecrets(t, srv.Token, srv.Password)
		}
	})
	return fx
}

// source is the resource's source: no git credentials but the forge's
// token, which serves as the git password too.
func (fx *prFixture) source(extra map[string]any) map[string]any {
	s := map[string]any{"kind": "manifest", "uri": fx.repo.CloneURL, "branch": "main",
		"forge": map[string]any{"type": "gitea", "token": fx.srv.Token}}
	for k, v := range extra {
		s[k] = v
	}
	return s
}

func (fx *prFixture) put(t *testing.T, src map[string]any, tag string, pr map[string]any) (rt.Response, rt.Result) {
	t.Helper()
	if pr == nil {
		pr = map[string]any{} // every default
	}
	params := map[string]any{"images": []map[string]any{{"repository": "ghcr.io/acme/web", "tag": tag}}, "pull_request": pr}
	return fx.run(t, src, params)
}

func (fx *prFixture) run(t *testing.T, src, params map[string]any) (rt.Response, rt.Result) {
	t.Helper()
	start := time.Now()
	res := rt.Run(t, "out", t.TempDir(), map[string]any{"source": src, "params": params}, rt.Env("ship", "7"))
	t.Logf("out (exit %d, %s):\n%s", res.Code, time.Since(start).Round(time.Millisecond), res.Stderr)
	fx.mu.Lock()
	fx.results = append(fx.results, res)
	fx.mu.Unlock()
	var out rt.Response
	if res.Code == 0 {
		res.OK(t, &out)
	}
	return out, res
}

// openPRs lists the repository's open pull requests.
func (fx *prFixture) openPRs(t *testing.T) []*gitea.PullRequest {
	t.Helper()
	prs, err := fx.listOpen(t)
	require.NoError(t, err)
	return prs
}

func (fx *prFixture) listOpen(t *testing.T) ([]*gitea.PullRequest, error) {
	prs, _, err := fx.srv.Client(t).ListRepoPullRequests(fx.repo.Owner, fx.repo.Name, gitea.ListPullRequestsOptions{State: gitea.StateOpen})
	return prs, err
}

// awaitOpenPR polls until the repository has an open pull request whose
// head is a commit, and returns it.
func (fx *prFixture) awaitOpenPR(t *testing.T) *gitea.PullRequest {
	t.Helper()
	var pr *gitea.PullRequest
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	err := proc.Poll(ctx, "an open pull request in "+fx.repo.FullName(), nil, func(context.Context) error {
		prs, err := fx.listOpen(t)
		if err != nil {
			return err // Gitea answers 404 until it has taken the first push in
		}
		if len(prs) == 0 || prs[0].Head == nil || prs[0].Head.Sha == "" {
			return fmt.Errorf("none yet")
		}
		pr = prs[0]
		return nil
	})
	require.NoError(t, err)
	return pr
}

// tip is what branch points at, as git ls-remote says ("" when there is
// no such branch): Gitea's branch API is not consistent right after a
// push.
func (fx *prFixture) tip(t *testing.T, branch string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "git", "ls-remote", fx.repo.AuthURL(fx.srv.Admin, fx.srv.Token), "refs/heads/"+branch)
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "HOME="+t.TempDir())
	out, err := cmd.Output()
	require.NoError(t, err)
	sha, _, _ := strings.Cut(string(out), "\t")
	return strings.TrimSpace(sha)
}

func TestPullRequestsAgainstGitea(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a Gitea")
	}
	srv := giteatest.Start(t)

	t.Run("OpenUpdateInPlaceKeepAndNoop", func(t *testing.T) {
		t.Parallel()
		fx := newPRFixture(t, srv)
		mainTip := fx.tip(t, "main")

		out, res := fx.put(t, fx.source(nil), "1.1.0", map[string]any{"labels": []string{"deploy"}, "body": "Ship %images%."})
		res.OK(t, nil)
		require.Equal(t, mainTip, out.Version["ref"], "the version stays the base's tip while the pull request is open")
		require.Equal(t, mainTip, fx.tip(t, "main"), "main is never pushed")
		branch := out.Meta1("pr_branch")
		require.Regexp(t, `^gitops/web-[0-9a-f]{8}$`, branch)
		head := out.Meta1("commit")
		require.Equal(t, head, fx.tip(t, branch))
		require.Equal(t, strings.Replace(prWeb, "1.0.0", "1.1.0", 1), fx.repo.ReadFile(t, branch, "apps/web.yaml"))
		require.Equal(t, prAPI, fx.repo.ReadFile(t, branch, "apps/api.yaml"))
		number := out.Meta1("pr_number")
		require.Equal(t, fmt.Sprintf("%s/%s/pulls/%s", fx.srv.URL, fx.repo.FullName(), number), out.Meta1("pr_url"))
		require.Contains(t, res.Stderr, "opened pull request #"+number)

		prs := fx.openPRs(t)
		require.Len(t, prs, 1)
		pr := prs[0]
		require.Equal(t, "web: 1.0.0 → 1.1.0", pr.Title)
		require.Equal(t, head, pr.Head.Sha, "wait: opened returns once the forge shows the commit")
		require.Equal(t, "main", pr.Base.Ref)
		require.Contains(t, pr.Body, "Ship web=1.1.0.\n\n| image | from | to | files |")
		require.Contains(t, pr.Body, "| `ghcr.io/acme/web` | `1.0.0` | `1.1.0` | `apps/web.yaml` |")
		require.Contains(t, pr.Body, "Build: [app/ship #7](https://ci.example.com/teams/main/pipelines/app/jobs/ship/builds/7)")
		require.Contains(t, pr.Body, "Gitops-Resource: manifest\nImage: ghcr.io/acme/web:1.0.0 -> 1.1.0\n")
		require.Len(t, pr.Labels, 1)
		require.Equal(t, "deploy", pr.Labels[0].Name)

		// Another tag: the same pull request, updated in place, its branch
		// replaced by a commit on main's tip.
		out2, res := fx.put(t, fx.source(nil), "1.2.0", nil)
		res.OK(t, nil)
		require.Equal(t, number, out2.Meta1("pr_number"))
		require.Equal(t, branch, out2.Meta1("pr_branch"))
		require.Contains(t, res.Stderr, "updated pull request #"+number+" in place")
		head2 := out2.Meta1("commit")
		require.NotEqual(t, head, head2)
		require.Equal(t, head2, fx.tip(t, branch))
		require.Equal(t, strings.Replace(prWeb, "1.0.0", "1.2.0", 1), fx.repo.ReadFile(t, branch, "apps/web.yaml"))
		prs = fx.openPRs(t)
		require.Len(t, prs, 1)
		require.Equal(t, "web: 1.0.0 → 1.2.0", prs[0].Title)
		require.Equal(t, head2, prs[0].Head.Sha)

		// The same again: the branch holds this change already; kept.
		out3, res := fx.put(t, fx.source(nil), "1.2.0", nil)
		res.OK(t, nil)
		require.Equal(t, head2, out3.Meta1("commit"))
		require.Contains(t, res.Stderr, "already holds this change on main")

		// What main holds already: no pull request, nothing pushed.
		out4, res := fx.put(t, fx.source(nil), "1.0.0", nil)
		res.OK(t, nil)
		require.Equal(t, mainTip, out4.Version["ref"])
		require.Empty(t, out4.Meta1("pr_url"))
		require.Contains(t, res.Stderr, "no pull request, nothing pushed")
		require.Equal(t, head2, fx.tip(t, branch))
		require.Equal(t, mainTip, fx.tip(t, "main"))
	})

	t.Run("MergeNowThenGetTheMergeCommit", func(t *testing.T) {
		t.Parallel()
		fx := newPRFixture(t, srv)
		fx.repo.Protect(t, "main") // nobody pushes to main: the change arrives through the merge
		// A first put opens the pull request; its head gets a pending status.
		out, res := fx.put(t, fx.source(nil), "1.1.0", map[string]any{"wait": "none"})
		res.OK(t, nil)
		head := out.Meta1("commit")
		fx.repo.SetStatus(t, head, "ci/test", "pending", "running")
		done := make(chan struct{})
		var merged rt.Response
		var mres rt.Result
		go func() {
			defer close(done)
			merged, mres = fx.put(t, fx.source(nil), "1.1.0", map[string]any{"merge": "now", "method": "merge"})
		}()
		fx.repo.SetStatus(t, head, "ci/test", "success", "12 passed")
		<-done
		mres.OK(t, nil)
		mainTip := fx.tip(t, "main")
		require.Equal(t, mainTip, merged.Version["ref"], "the version is the merge commit on main")
		require.Equal(t, mainTip, merged.Meta1("merge_commit"))
		require.Equal(t, head, merged.Meta1("commit"), "the same change: the head commit was kept")
		require.Equal(t, strings.Replace(prWeb, "1.0.0", "1.1.0", 1), fx.repo.ReadFile(t, "main", "apps/web.yaml"))
		require.Contains(t, mres.Stderr, "ci/test: success")
		require.Empty(t, fx.openPRs(t))

		// A following get of the resource fetches exactly that revision.
		in := rt.Run(t, "in", t.TempDir(), map[string]any{"source": fx.source(nil), "version": merged.Version}, rt.Env("ship", "7"))
		in.OK(t, nil)
		fx.mu.Lock()
		fx.results = append(fx.results, in)
		fx.mu.Unlock()
	})

	t.Run("AutoMergeOnceTheChecksPass", func(t *testing.T) {
		t.Parallel()
		fx := newPRFixture(t, srv)
		fx.repo.Protect(t, "main", "ci/test")
		out, res := fx.put(t, fx.source(nil), "1.1.0", map[string]any{"wait": "none"})
		res.OK(t, nil)
		head := out.Meta1("commit")
		fx.repo.SetStatus(t, head, "ci/test", "pending", "running")
		done := make(chan struct{})
		var merged rt.Response
		var mres rt.Result
		go func() {
			defer close(done)
			merged, mres = fx.put(t, fx.source(nil), "1.1.0", map[string]any{"merge": "auto", "wait": "merged", "method": "squash", "timeout": "2m"})
		}()
		// The put asks Gitea to merge once the required check passes
		// (main is protected by it), then waits; the check passes.
		fx.awaitOpenPR(t)
		fx.repo.SetStatus(t, head, "ci/test", "success", "12 passed")
		<-done
		mres.OK(t, nil)
		require.Contains(t, mres.Stderr, "asked ")
		mainTip := fx.tip(t, "main")
		require.Equal(t, mainTip, merged.Version["ref"])
		require.Equal(t, strings.Replace(prWeb, "1.0.0", "1.1.0", 1), fx.repo.ReadFile(t, "main", "apps/web.yaml"))
	})

	t.Run("WaitForAMergeByHand", func(t *testing.T) {
		t.Parallel()
		fx := newPRFixture(t, srv)
		done := make(chan struct{})
		var out rt.Response
		var res rt.Result
		go func() {
			defer close(done)
			out, res = fx.put(t, fx.source(nil), "1.1.0", map[string]any{"wait": "merged", "method": "squash", "timeout": "3m"})
		}()
		pr := fx.awaitOpenPR(t)
		fx.repo.SetStatus(t, pr.Head.Sha, "ci/review", "pending", "waiting for a person")
		mergeCommit := fx.repo.MergeByHand(t, int(pr.Index))
		<-done
		res.OK(t, nil)
		require.Equal(t, mergeCommit, out.Version["ref"])
		require.Equal(t, mergeCommit, fx.tip(t, "main"))
		require.Contains(t, res.Stderr, "waiting for "+pr.HTMLURL+" to be merged (timeout 3m0s)")
		require.Contains(t, res.Stderr, "is merged: "+mergeCommit[:12]+" is on main")
	})

	t.Run("ClosedUnmergedFails", func(t *testing.T) {
		t.Parallel()
		fx := newPRFixture(t, srv)
		mainTip := fx.tip(t, "main")
		done := make(chan struct{})
		var res rt.Result
		go func() {
			defer close(done)
			_, res = fx.put(t, fx.source(nil), "1.1.0", map[string]any{"wait": "merged"})
		}()
		pr := fx.awaitOpenPR(t)
		fx.repo.Close(t, int(pr.Index))
		<-done
		res.Fails(t, "pull request "+pr.HTMLURL+" was closed without being merged")
		require.Equal(t, mainTip, fx.tip(t, "main"))
	})

	t.Run("FailingStatusBlocksMergeNow", func(t *testing.T) {
		t.Parallel()
		fx := newPRFixture(t, srv)
		mainTip := fx.tip(t, "main")
		out, res := fx.put(t, fx.source(nil), "1.1.0", map[string]any{"wait": "none"})
		res.OK(t, nil)
		head := out.Meta1("commit")
		fx.repo.SetStatus(t, head, "ci/test", "failure", "2 tests failed")
		fx.repo.SetStatus(t, head, "ci/lint", "success", "clean")
		_, res = fx.put(t, fx.source(nil), "1.1.0", map[string]any{"merge": "now"})
		res.Fails(t, "is not merged: the checks on "+head[:12]+" failed", "ci/test", "2 tests failed")
		require.Equal(t, mainTip, fx.tip(t, "main"))
		require.Len(t, fx.openPRs(t), 1)
	})

	t.Run("ConcurrentPutsOfDifferentImagesGetOnePullRequestEach", func(t *testing.T) {
		t.Parallel()
		fx := newPRFixture(t, srv)
		var wg sync.WaitGroup
		outs := make([]rt.Response, 2)
		errs := make([]rt.Result, 2)
		for i, repo := range []string{"ghcr.io/acme/web", "ghcr.io/acme/api"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				outs[i], errs[i] = fx.run(t, fx.source(nil), map[string]any{
					"images": []map[string]any{{"repository": repo, "tag": "2.0.0"}}, "pull_request": map[string]any{}})
			}()
		}
		wg.Wait()
		for i := range outs {
			errs[i].OK(t, nil)
		}
		require.NotEqual(t, outs[0].Meta1("pr_branch"), outs[1].Meta1("pr_branch"))
		require.NotEqual(t, outs[0].Meta1("pr_number"), outs[1].Meta1("pr_number"))
		require.Len(t, fx.openPRs(t), 2)
		require.Equal(t, strings.Replace(prWeb, "1.0.0", "2.0.0", 1), fx.repo.ReadFile(t, outs[0].Meta1("pr_branch"), "apps/web.yaml"))
		require.Equal(t, prAPI, fx.repo.ReadFile(t, outs[0].Meta1("pr_branch"), "apps/api.yaml"))
		require.Equal(t, strings.Replace(prAPI, "1.0.0", "2.0.0", 1), fx.repo.ReadFile(t, outs[1].Meta1("pr_branch"), "apps/api.yaml"))
		require.Equal(t, prWeb, fx.repo.ReadFile(t, outs[1].Meta1("pr_branch"), "apps/web.yaml"))
	})

	t.Run("TokenWithoutRightsFailsNamingThePermission", func(t *testing.T) {
		t.Parallel()
		fx := newPRFixture(t, srv)
		reader := fx.repo.ReadOnlyUser(t)
		t.Cleanup(func() {
			fx.mu.Lock()
			defer fx.mu.Unlock()
			for _, r := range fx.results {
				r.NoSecrets(t, reader.Token, reader.Password)
			}
		})
		forgeOnly := fx.source(map[string]any{"forge": map[string]any{"type": "gitea", "token": reader.Token},
			"username": fx.srv.Admin, "password": fx.srv.Password})
		// git may push (the admin's password), the forge's token may only
		// read: the merge is refused, saying what is missing.
		_, res := fx.put(t, forgeOnly, "1.1.0", map[string]any{"merge": "now"})
		res.Fails(t, "source.forge.token", "write access to "+fx.repo.FullName())
		require.NotContains(t, res.Stderr, "attempt 2", "a refusal for lack of rights is not retried")
		// The reader's token as the git password: the push is refused.
		_, res = fx.put(t, fx.source(map[string]any{"forge": map[string]any{"type": "gitea", "token": reader.Token}}), "1.2.0", nil)
		res.Fails(t, "push")
		t.Logf("a read-only token as the git password: %s", res.Stderr)
	})
}

func TestPullRequestConfigErrorsBeforeAnyRequest(t *testing.T) {
	t.Parallel()
	fx, requests := newCountingFixture(t)
	_, res := fx.put(t, fx.source(nil), map[string]any{
		"images":       []map[string]any{{"repository": "acme/web", "tag": "1.1"}},
		"push_branch":  "other",
		"pull_request": map[string]any{"merge": "soon", "wait": "opened", "timeout": "5m"},
	})
	res.Fails(t,
		"params.push_branch and params.pull_request cannot both be set",
		`params.pull_request.merge "soon" is not one of none, auto, now`,
		"params.pull_request.timeout bounds wait: merged and merge: now",
		"params.pull_request needs source.forge")
	_, res = fx.put(t, fx.source(map[string]any{"forge": map[string]any{"token": "s3cret-token-value"}}), map[string]any{
		"images": []map[string]any{{"repository": "acme/web", "tag": "1.1"}}, "pull_request": map[string]any{"branch": "main"}})
	res.Fails(t, "source.forge.type is not set and the forge cannot be recognised",
		"params.pull_request.branch is source.branch (main)")
	res.NoSecrets(t, "s3cret-token-value")
	require.Zero(t, requests.Load())
}
