package manifest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/pkg/forge"
	"github.com/gitops-resource/gitops-resource/pkg/resource"
	"github.com/gitops-resource/gitops-resource/pkg/retry"
)

func TestPRBranchName(t *testing.T) {
	t.Parallel()
	web := Target{Repository: "ghcr.io/acme/web", Tag: "1.0"}
	app := Target{Repository: "docker.io/acme/MyApp", Tag: "2.0"}
	scope := pathSet{include: []string{"apps/"}}
	name := prBranchName("main", []Target{web, app}, nil, scope)
	require.Regexp(t, `^gitops/myapp-web-[0-9a-f]{8}$`, name)

	// Stable: the tags, the order and the spelling of Docker Hub do not matter.
	web2, app2 := web, app
	web2.Tag, app2.Tag = "9.9", "9.9"
	require.Equal(t, name, prBranchName("main", []Target{app2, web2}, nil, scope))
	hub := Target{Repository: "nginx", Tag: "1"}
	require.Equal(t, prBranchName("main", []Target{hub}, nil, scope),
		prBranchName("main", []Target{{Repository: "docker.io/library/nginx", Tag: "2"}}, nil, scope))

	// What the change is does: the base, the paths, the images.
	require.NotEqual(t, name, prBranchName("release", []Target{web, app}, nil, scope))
	require.NotEqual(t, name, prBranchName("main", []Target{web, app}, nil, pathSet{include: []string{"prod/"}}))
	require.NotEqual(t, name, prBranchName("main", []Target{web}, nil, scope))
	require.NotEqual(t, prBranchName("main", []Target{web}, nil, scope),
		prBranchName("main", []Target{{Repository: "quay.io/acme/web"}}, nil, scope))

	setter := prBranchName("main", []Target{{Setter: "flux-system:web-policy"}}, nil, scope)
	require.Regexp(t, `^gitops/web-policy-[0-9a-f]{8}$`, setter)
	promote := prBranchName("main", nil, &Promote{From: "overlays/staging", To: "overlays/prod/"}, scope)
	require.Regexp(t, `^gitops/promote-prod-[0-9a-f]{8}$`, promote)

	var many []Target
	for i := range 20 {
		many = append(many, Target{Repository: fmt.Sprintf("acme/Service_%02d!", i)})
	}
	long := prBranchName("main", many, nil, scope)
	require.LessOrEqual(t, len(long), len("gitops/")+40+9)
	require.NoError(t, validBranch(long))
}

func validBranch(name string) error {
	p := PullRequestParams{Branch: name}
	return p.validate("")
}

func TestSlug(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"web":           "web",
		"My App":        "my-app",
		"a..b":          "a..b",
		"-x-":           "x",
		"../..":         "",
		"ÄÖ-web":        "web",
		"podinfo_v2.1":  "podinfo_v2.1",
		"x///y::z":      "x-y-z",
		".hidden.lock.": "hidden.lock",
	} {
		require.Equal(t, want, slug(in), in)
	}
}

func TestPullRequestParamsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		p          PullRequestParams
		pushBranch string
		want       []string
	}{
		{name: "defaults", p: PullRequestParams{}},
		{name: "everything", p: PullRequestParams{Title: "bump %images%", Body: "from %build_url%", Labels: []string{"deploy"}, Base: "main", Branch: "gitops/x", Merge: "now", Method: "squash", Timeout: resource.Duration(time.Minute)}},
		{name: "push_branch", p: PullRequestParams{}, pushBranch: "other", want: []string{"params.push_branch and params.pull_request cannot both be set"}},
		{name: "bad values", p: PullRequestParams{Merge: "later", Wait: "forever", Method: "fast-forward"}, want: []string{
			`params.pull_request.merge "later" is not one of none, auto, now`,
			`params.pull_request.wait "forever" is not one of none, opened, merged`,
			`params.pull_request.method "fast-forward" is not one of merge, squash, rebase`}},
		{name: "merge now contradicts wait", p: PullRequestParams{Merge: "now", Wait: "opened"}, want: []string{"params.pull_request.wait: opened contradicts merge: now"}},
		{name: "timeout without a wait", p: PullRequestParams{Timeout: resource.Duration(time.Minute)}, want: []string{"params.pull_request.timeout bounds wait: merged and merge: now"}},
		{name: "branches", p: PullRequestParams{Base: "x..y", Branch: "a b"}, want: []string{"params.pull_request.base", "params.pull_request.branch"}},
		{name: "same branch", p: PullRequestParams{Base: "main", Branch: "main"}, want: []string{`params.pull_request.branch and params.pull_request.base are both "main"`}},
		{name: "placeholders and labels", p: PullRequestParams{Title: "%nope%", Body: "%what%", Labels: []string{" "}}, want: []string{
			"params.pull_request.title: unknown placeholder %nope%", "params.pull_request.body: unknown placeholder %what%", "params.pull_request.labels[0] is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.p.validate(tt.pushBranch)
			if len(tt.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tt.want {
				require.Contains(t, err.Error(), w)
			}
			require.True(t, resource.IsConfigError(err))
		})
	}
}

func TestValidatePullRequestNeedsAForge(t *testing.T) {
	t.Parallel()
	src := &Source{}
	src.URI, src.Branch = "https://git.example.com/acme/deploy.git", "main"
	err := validatePullRequest(src, &PullRequestParams{Branch: "main"})
	require.ErrorContains(t, err, "params.pull_request needs source.forge")
	require.ErrorContains(t, err, "params.pull_request.branch is source.branch (main)")

	src.Forge = &ForgeSource{}
	err = validatePullRequest(src, &PullRequestParams{})
	require.ErrorContains(t, err, "source.forge.type is not set and git.example.com is not github.com or gitlab.com")
	require.ErrorContains(t, err, "source.forge.token is not set")
	require.True(t, resource.IsConfigError(err))

	src.Forge = &ForgeSource{Type: "gitea", Token: "t0ken"}
	require.NoError(t, validatePullRequest(src, &PullRequestParams{}))
}

func TestForgeTokenAsPassword(t *testing.T) {
	t.Parallel()
	mk := func(uri, typ string) *Source {
		s := &Source{Forge: &ForgeSource{Type: typ, Token: "tok"}}
		s.URI = uri
		return s
	}
	s := mk("https://gitea.example.com/acme/deploy.git", "gitea")
	s.forgeTokenAsPassword()
	require.Equal(t, "x-access-token", s.Username)
	require.Equal(t, "tok", s.Password)

	s = mk("https://gitlab.com/acme/deploy.git", "")
	s.forgeTokenAsPassword()
	require.Equal(t, "oauth2", s.Username)

	s = mk("https://gitea.example.com/acme/deploy.git", "gitea")
	s.Username, s.Password = "ci", "own"
	s.forgeTokenAsPassword()
	require.Equal(t, "own", s.Password, "a password set stays")

	s = mk("https://gitea.example.com/acme/deploy.git", "gitea")
	s.Username = "bot"
	s.forgeTokenAsPassword()
	require.Equal(t, "bot", s.Username)
	require.Equal(t, "tok", s.Password)

	for _, uri := range []string{"git@gitea.example.com:acme/deploy.git", "https://u:p@gitea.example.com/acme/deploy.git"} {
		s = mk(uri, "gitea")
		s.forgeTokenAsPassword()
		require.Empty(t, s.Password, uri)
	}
}

func TestPRTitleAndBody(t *testing.T) {
	t.Parallel()
	env := resource.Env{BuildName: "12", JobName: "ship", PipelineName: "web", TeamName: "main", ExternalURL: "https://ci.example.com"}
	changes := []ImageChange{
		{Repository: "ghcr.io/acme/web", Name: "web", Old: "1.0.0", New: "1.1.0", File: "apps/web.yaml"},
		{Repository: "ghcr.io/acme/web", Name: "web", Old: "1.0.0", New: "1.1.0", File: "apps/cron.yaml"},
		{Repository: "ghcr.io/acme/api", Name: "api", Old: "", New: "2.0", File: "apps/kustomization.yaml", Added: true},
	}
	title, err := prTitle(PullRequestParams{}, defaultMessage, changes, env)
	require.NoError(t, err)
	require.Equal(t, "web: 1.0.0 → 1.1.0, api:  → 2.0", title)
	title, err = prTitle(PullRequestParams{}, "deploy %images%\n\nmore", changes, env)
	require.NoError(t, err)
	require.Equal(t, "deploy web=1.1.0 api=2.0", title)
	title, err = prTitle(PullRequestParams{Title: "Release %build%"}, defaultMessage, changes, env)
	require.NoError(t, err)
	require.Equal(t, "Release web/ship #12", title)

	msg, err := commitMessage(defaultMessage, changes, env, false)
	require.NoError(t, err)
	body, err := prBody(PullRequestParams{Body: "Ship it (%build%)."}, "gitops/web-1234abcd", changes, env, msg)
	require.NoError(t, err)
	want := "Ship it (web/ship #12).\n\n" +
		"| image | from | to | files |\n|---|---|---|---|\n" +
		"| `ghcr.io/acme/web` | `1.0.0` | `1.1.0` | `apps/web.yaml`, `apps/cron.yaml` |\n" +
		"| `ghcr.io/acme/api` | (added) | `2.0` | `apps/kustomization.yaml` |\n" +
		"\nBuild: [web/ship #12](https://ci.example.com/teams/main/pipelines/web/jobs/ship/builds/12)\n" +
		"\n```\nGitops-Resource: manifest\nImage: ghcr.io/acme/web:1.0.0 -> 1.1.0\nImage: ghcr.io/acme/api -> 2.0\n" +
		"Concourse-Build: web/ship #12\nConcourse-Build-URL: https://ci.example.com/teams/main/pipelines/web/jobs/ship/builds/12\n```\n" +
		"\n<sub>Opened by gitops-resource: every put of these images replaces the branch `gitops/web-1234abcd` with a new commit on the base's tip.</sub>\n"
	require.Equal(t, want, body)
	require.Equal(t, "", trailers("subject only"))
	require.Equal(t, "", trailers("subject\n\nnot a trailer line\n"))
}

// fakeForge is a forge in memory, for the logic of prRun; the end-to-end
// tests run the same against a real Gitea.
type fakeForge struct {
	mu     sync.Mutex
	prs    map[int]*forge.PullRequest
	calls  []string
	checks []forge.Checks // returned in turn, the last one repeats
	// mergeRefusals transient refusals come before a merge succeeds.
	mergeRefusals int
	noAutoMerge   bool
	// onGet changes the pull request on the n-th Get (from 1).
	onGet   func(n int, pr *forge.PullRequest)
	gets    int
	openErr error
	// beforeOpen runs as Open starts, once.
	beforeOpen func()
}

func newFakeForge() *fakeForge { return &fakeForge{prs: map[int]*forge.PullRequest{}} }

func (f *fakeForge) call(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeForge) FindOpen(_ context.Context, head, base string) (*forge.PullRequest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("find %s %s", head, base)
	for _, pr := range f.prs {
		if pr.Head == head && pr.Base == base && pr.State == forge.Open {
			cp := *pr
			return &cp, nil
		}
	}
	return nil, nil
}

func (f *fakeForge) Open(_ context.Context, n forge.NewPullRequest) (*forge.PullRequest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("open %s", n.Title)
	if f.beforeOpen != nil {
		f.beforeOpen()
		f.beforeOpen = nil
	}
	if f.openErr != nil {
		return nil, f.openErr
	}
	num := len(f.prs) + 1
	pr := &forge.PullRequest{Number: num, URL: fmt.Sprintf("https://forge/pulls/%d", num), State: forge.Open, Head: n.Head, Base: n.Base, HeadSHA: "old"}
	f.prs[num] = pr
	cp := *pr
	return &cp, nil
}

func (f *fakeForge) Update(_ context.Context, number int, n forge.NewPullRequest) (*forge.PullRequest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("update %d %s", number, n.Title)
	cp := *f.prs[number]
	return &cp, nil
}

func (f *fakeForge) Get(_ context.Context, number int) (*forge.PullRequest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	pr := f.prs[number]
	if f.onGet != nil {
		f.onGet(f.gets, pr)
	}
	cp := *pr
	return &cp, nil
}

func (f *fakeForge) Merge(_ context.Context, number int, method forge.MergeMethod, headSHA string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("merge %d %s %s", number, method, headSHA)
	if f.mergeRefusals > 0 {
		f.mergeRefusals--
		return retry.Retryable(errors.New("405 Method Not Allowed: Please try again later"))
	}
	pr := f.prs[number]
	pr.State, pr.MergeCommit = forge.Merged, "m3rge"
	return nil
}

func (f *fakeForge) AutoMerge(_ context.Context, number int, method forge.MergeMethod, headSHA string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("automerge %d %s %s", number, method, headSHA)
	if f.noAutoMerge {
		return forge.ErrNoAutoMerge
	}
	return nil
}

func (f *fakeForge) Checks(_ context.Context, sha string) (forge.Checks, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.checks) == 0 {
		return forge.Checks{State: forge.None}, nil
	}
	c := f.checks[0]
	if len(f.checks) > 1 {
		f.checks = f.checks[1:]
	}
	return c, nil
}

// testRun is a prRun that never pauses.
func testRun(f forge.Forge, p PullRequestParams) (*prRun, *bytes.Buffer) {
	var log bytes.Buffer
	r := newPRRun(f, p, &log)
	r.poll = func(ctx context.Context, n int) error {
		if n > 100 {
			return errors.New("gave up polling")
		}
		return context.Cause(ctx)
	}
	r.mergeRetry = retry.Backoff{Attempts: 5, Base: time.Microsecond, Max: time.Microsecond}
	return r, &log
}

var npr = forge.NewPullRequest{Title: "web: 1 → 2", Head: "gitops/web-1", Base: "main"}

func TestOpenThenUpdateInPlace(t *testing.T) {
	t.Parallel()
	f := newFakeForge()
	r, log := testRun(f, PullRequestParams{})
	pr, err := r.openOrUpdate(t.Context(), npr)
	require.NoError(t, err)
	require.Equal(t, 1, pr.Number)
	again, err := r.openOrUpdate(t.Context(), forge.NewPullRequest{Title: "web: 1 → 3", Head: npr.Head, Base: npr.Base})
	require.NoError(t, err)
	require.Equal(t, 1, again.Number)
	require.Equal(t, []string{"find gitops/web-1 main", "open web: 1 → 2", "find gitops/web-1 main", "update 1 web: 1 → 3"}, f.calls)
	require.Contains(t, log.String(), "opened pull request #1: https://forge/pulls/1")
	require.Contains(t, log.String(), "updated pull request #1 in place")

	// A closed one is not ours to update: a new one is opened.
	f.prs[1].State = forge.Closed
	pr, err = r.openOrUpdate(t.Context(), npr)
	require.NoError(t, err)
	require.Equal(t, 2, pr.Number)
}

func TestOpenLosingTheRaceUpdates(t *testing.T) {
	t.Parallel()
	f := newFakeForge()
	r, _ := testRun(f, PullRequestParams{})
	// Another put of the same images opens it between our look and our
	// open: the forge refuses ours, and theirs is updated.
	f.openErr = errors.New("409 Conflict: pull request already exists")
	f.beforeOpen = func() {
		f.prs[7] = &forge.PullRequest{Number: 7, URL: "https://forge/pulls/7", State: forge.Open, Head: npr.Head, Base: npr.Base}
	}
	pr, err := r.openOrUpdate(t.Context(), npr)
	require.NoError(t, err)
	require.Equal(t, 7, pr.Number)
	require.Equal(t, []string{"find gitops/web-1 main", "open web: 1 → 2", "find gitops/web-1 main", "find gitops/web-1 main", "update 7 web: 1 → 2"}, f.calls)

	f.prs[7].State = forge.Closed
	_, err = r.openOrUpdate(t.Context(), npr)
	require.ErrorContains(t, err, "open a pull request from gitops/web-1 into main: 409 Conflict")
}

func TestAwaitHead(t *testing.T) {
	t.Parallel()
	f := newFakeForge()
	r, log := testRun(f, PullRequestParams{})
	pr, err := r.openOrUpdate(t.Context(), npr)
	require.NoError(t, err)
	f.onGet = func(n int, pr *forge.PullRequest) {
		if n == 3 {
			pr.HeadSHA = "new"
		}
	}
	pr, err = r.awaitHead(t.Context(), pr, "new")
	require.NoError(t, err)
	require.Equal(t, "new", pr.HeadSHA)
	require.Contains(t, log.String(), "waiting for https://forge/pulls/1 to show new as its head (it shows old)")
}

func TestMergeNowWaitsForChecksAndRetriesRefusals(t *testing.T) {
	t.Parallel()
	f := newFakeForge()
	f.checks = []forge.Checks{
		{State: forge.Pending, Lines: []string{"ci/test: pending: running"}},
		{State: forge.Pending, Lines: []string{"ci/test: pending: running"}},
		{State: forge.Success, Lines: []string{"ci/test: success: 12 passed"}},
	}
	f.mergeRefusals = 2
	r, log := testRun(f, PullRequestParams{Merge: mergeNow, Method: "squash"})
	pr, err := r.openOrUpdate(t.Context(), npr)
	require.NoError(t, err)
	pr, err = r.mergeNow(t.Context(), pr)
	require.NoError(t, err)
	require.Equal(t, "m3rge", pr.MergeCommit)
	require.Equal(t, 3, strings.Count(strings.Join(f.calls, "\n"), "merge 1 squash old"))
	// Each change of the checks is printed once.
	require.Equal(t, 1, strings.Count(log.String(), "ci/test: pending: running"), log.String())
	require.Contains(t, log.String(), "checks on old: success\n  ci/test: success: 12 passed")
	require.Contains(t, log.String(), "try again later")
}

func TestMergeNowFailsOnFailingChecks(t *testing.T) {
	t.Parallel()
	f := newFakeForge()
	f.checks = []forge.Checks{{State: forge.Failure, Lines: []string{"ci/test: failure: 2 tests failed", "ci/lint: success"}}}
	r, _ := testRun(f, PullRequestParams{Merge: mergeNow})
	pr, _ := r.openOrUpdate(t.Context(), npr)
	_, err := r.mergeNow(t.Context(), pr)
	require.ErrorContains(t, err, "pull request https://forge/pulls/1 is not merged: the checks on old failed:\n  ci/test: failure: 2 tests failed\n  ci/lint: success")
	for _, c := range f.calls {
		require.NotContains(t, c, "merge 1")
	}
}

func TestMergeNowGivesUpOnPermanentRefusal(t *testing.T) {
	t.Parallel()
	f := &refusingForge{fakeForge: newFakeForge()}
	r, _ := testRun(f, PullRequestParams{Merge: mergeNow})
	pr, _ := r.openOrUpdate(t.Context(), npr)
	_, err := r.mergeNow(t.Context(), pr)
	require.ErrorContains(t, err, "merge pull request https://forge/pulls/1: 403 Forbidden: not allowed to merge")
	require.Equal(t, 1, f.merges, "a permanent refusal is not retried")
}

type refusingForge struct {
	*fakeForge
	merges int
}

func (f *refusingForge) Merge(context.Context, int, forge.MergeMethod, string) error {
	f.merges++
	return errors.New("403 Forbidden: not allowed to merge") // not marked Retryable: final
}

func TestAwaitMerged(t *testing.T) {
	t.Parallel()
	t.Run("merged by hand", func(t *testing.T) {
		t.Parallel()
		f := newFakeForge()
		f.checks = []forge.Checks{{State: forge.Pending, Lines: []string{"ci: pending"}}, {State: forge.Success, Lines: []string{"ci: success"}}}
		f.onGet = func(n int, pr *forge.PullRequest) {
			if n == 4 {
				pr.State, pr.MergeCommit = forge.Merged, "byhand"
			}
		}
		r, log := testRun(f, PullRequestParams{Wait: waitMerged})
		pr, _ := r.openOrUpdate(t.Context(), npr)
		pr, err := r.awaitMerged(t.Context(), pr)
		require.NoError(t, err)
		require.Equal(t, "byhand", pr.MergeCommit)
		require.Contains(t, log.String(), "checks on old: pending\n  ci: pending\nchecks on old: success\n  ci: success\n")
	})
	t.Run("closed unmerged", func(t *testing.T) {
		t.Parallel()
		f := newFakeForge()
		f.onGet = func(n int, pr *forge.PullRequest) { pr.State = forge.Closed }
		r, _ := testRun(f, PullRequestParams{Wait: waitMerged})
		pr, _ := r.openOrUpdate(t.Context(), npr)
		_, err := r.awaitMerged(t.Context(), pr)
		require.EqualError(t, err, "pull request https://forge/pulls/1 was closed without being merged: nothing reached main")
	})
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		f := newFakeForge()
		r, _ := testRun(f, PullRequestParams{Wait: waitMerged, Timeout: resource.Duration(time.Minute)})
		ctx, cancel := context.WithCancelCause(t.Context())
		cancel(errPRTimeout)
		pr, _ := r.openOrUpdate(t.Context(), npr)
		_, err := r.awaitMerged(ctx, pr)
		require.EqualError(t, err, "pull request https://forge/pulls/1 was not merged within 1m0s (params.pull_request.timeout)")
	})
}

func TestAutoMerge(t *testing.T) {
	t.Parallel()
	f := newFakeForge()
	r, _ := testRun(f, PullRequestParams{Merge: mergeAuto, Method: "rebase"})
	pr, _ := r.openOrUpdate(t.Context(), npr)
	require.NoError(t, r.autoMerge(t.Context(), pr, "https://forge (gitea)"))
	require.Contains(t, f.calls, "automerge 1 rebase old")
	f.noAutoMerge = true
	err := r.autoMerge(t.Context(), pr, "https://forge (gitlab)")
	require.EqualError(t, err, "params.pull_request.merge: auto on https://forge (gitlab): the forge has no auto-merge (merge: now has the put merge once the checks pass)")
}
