package forge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-github/v74/github"

	"github.com/gitops-resource/gitops-resource/pkg/retry"
)

// gitHub is a repository on github.com or a GitHub Enterprise Server,
// through go-github. It makes one attempt per call: the caller retries what
// is marked retry.Retryable.
type gitHub struct {
	c           *github.Client
	host        string // the API's host, for errors
	owner, repo string
}

// newGitHub is the GitHub client of cfg: github.com (cfg.URL empty or
// https://github.com) speaks to api.github.com, any other URL is a GitHub
// Enterprise Server, whose REST API is under /api/v3/ and GraphQL API at
// /api/graphql.
func newGitHub(cfg Config, hc *http.Client) (Forge, error) {
	c := github.NewClient(hc).WithAuthToken(cfg.Token)
	if !isGitHubDotCom(cfg.URL) {
		var err error
		if c, err = c.WithEnterpriseURLs(cfg.URL, cfg.URL); err != nil {
			return nil, fmt.Errorf("source.forge.url %q is not a URL: %w", redactURL(cfg.URL), err)
		}
	}
	return &gitHub{c: c, host: c.BaseURL.Host, owner: cfg.Owner, repo: cfg.Repo}, nil
}

// isGitHubDotCom reports whether a forge URL means github.com.
func isGitHubDotCom(raw string) bool {
	if raw == "" {
		return true
	}
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	h := strings.ToLower(u.Hostname())
	return h == "github.com" || h == "www.github.com" || h == "api.github.com"
}

func (g *gitHub) FindOpen(ctx context.Context, head, base string) (*PullRequest, error) {
	opts := &github.PullRequestListOptions{State: "open", Head: g.owner + ":" + head, Base: base}
	prs, resp, err := g.c.PullRequests.List(ctx, g.owner, g.repo, opts)
	if err != nil {
		return nil, g.fail(ctx, fmt.Sprintf("list the open pull requests from %s into %s", head, base), resp, err)
	}
	for _, pr := range prs {
		// The head filter is the API's; the check keeps a forge that
		// ignores it from handing us someone else's pull request.
		if pr.GetHead().GetRef() == head && pr.GetBase().GetRef() == base {
			return fromGitHub(pr), nil
		}
	}
	return nil, nil
}

func (g *gitHub) Open(ctx context.Context, npr NewPullRequest) (*PullRequest, error) {
	what := fmt.Sprintf("open a pull request from %s into %s", npr.Head, npr.Base)
	pr, resp, err := g.c.PullRequests.Create(ctx, g.owner, g.repo, &github.NewPullRequest{
		Title: github.Ptr(npr.Title), Body: github.Ptr(npr.Body),
		Head: github.Ptr(npr.Head), Base: github.Ptr(npr.Base),
	})
	if err != nil {
		return nil, g.fail(ctx, what, resp, err)
	}
	if len(npr.Labels) > 0 {
		// Labels are the issues API's: a pull request is an issue too.
		if _, resp, err := g.c.Issues.AddLabelsToIssue(ctx, g.owner, g.repo, pr.GetNumber(), npr.Labels); err != nil {
			return nil, g.fail(ctx, fmt.Sprintf("label pull request #%d", pr.GetNumber()), resp, err)
		}
	}
	return fromGitHub(pr), nil
}

func (g *gitHub) Update(ctx context.Context, number int, npr NewPullRequest) (*PullRequest, error) {
	pr, resp, err := g.c.PullRequests.Edit(ctx, g.owner, g.repo, number, &github.PullRequest{
		Title: github.Ptr(npr.Title), Body: github.Ptr(npr.Body),
	})
	if err != nil {
		return nil, g.fail(ctx, fmt.Sprintf("update pull request #%d", number), resp, err)
	}
	// No labels asked for leaves the ones a person set.
	if len(npr.Labels) > 0 {
		if _, resp, err := g.c.Issues.ReplaceLabelsForIssue(ctx, g.owner, g.repo, number, npr.Labels); err != nil {
			return nil, g.fail(ctx, fmt.Sprintf("label pull request #%d", number), resp, err)
		}
	}
	return fromGitHub(pr), nil
}

func (g *gitHub) Get(ctx context.Context, number int) (*PullRequest, error) {
	pr, resp, err := g.c.PullRequests.Get(ctx, g.owner, g.repo, number)
	if err != nil {
		return nil, g.fail(ctx, fmt.Sprintf("read pull request #%d", number), resp, err)
	}
	return fromGitHub(pr), nil
}

// fromGitHub reads a pull request. Before the merge, merge_commit_sha is
// GitHub's test merge; it is the commit on the base only once merged.
func fromGitHub(pr *github.PullRequest) *PullRequest {
	out := &PullRequest{
		Number: pr.GetNumber(), URL: pr.GetHTMLURL(), State: Open,
		Head: pr.GetHead().GetRef(), Base: pr.GetBase().GetRef(), HeadSHA: pr.GetHead().GetSHA(),
	}
	switch {
	case pr.GetMerged() || pr.MergedAt != nil:
		out.State, out.MergeCommit = Merged, pr.GetMergeCommitSHA()
	case pr.GetState() == "closed":
		out.State = Closed
	}
	return out
}

// Merge merges with PUT /pulls/{n}/merge. GitHub answers 405 when the pull
// request cannot be merged now ("Base branch was modified", "Pull Request
// is not mergeable" while it computes mergeability, a required check not
// yet reported): retryable, except a missing review and a merge method the
// repository does not allow, which waiting does not change; and 409 when
// the head is no longer headSHA: final.
func (g *gitHub) Merge(ctx context.Context, number int, method MergeMethod, headSHA string) error {
	what := fmt.Sprintf("merge pull request #%d", number)
	res, resp, err := g.c.PullRequests.Merge(ctx, g.owner, g.repo, number, "", &github.PullRequestOptions{
		SHA: headSHA, MergeMethod: string(method),
	})
	var er *github.ErrorResponse
	switch {
	case err == nil && !res.GetMerged():
		return retry.Permanent(fmt.Errorf("%s: GitHub did not merge it: %s", g.where(what), res.GetMessage()))
	case err == nil:
		return nil
	case errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusConflict:
		return retry.Permanent(fmt.Errorf("%s: its head is no longer %s (%s): someone pushed to the pull request's branch", g.where(what), headSHA, gitHubMessage(er)))
	case errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusMethodNotAllowed:
		msg := gitHubMessage(er)
		switch lower := strings.ToLower(msg); {
		case strings.Contains(lower, "approv"): // "At least 1 approving review is required..."
			return retry.Permanent(fmt.Errorf("%s: GitHub refused: %s: the pull request needs an approving review", g.where(what), msg))
		case strings.Contains(lower, "merges are not allowed"): // "Rebase merges are not allowed on this repository"
			return retry.Permanent(fmt.Errorf("%s: GitHub refused: %s: choose a merge method the repository allows (pull_request.method)", g.where(what), msg))
		}
		return retry.Retryable(fmt.Errorf("%s: GitHub cannot merge it now (405): %s", g.where(what), msg))
	}
	return g.fail(ctx, what, resp, err)
}

// autoMergeMutation enables GitHub's auto-merge, pinned to the head we
// pushed. https://docs.github.com/en/graphql/reference/mutations#enablepullrequestautomerge
const autoMergeMutation = `mutation($id: ID!, $method: PullRequestMergeMethod!, $sha: GitObjectID) {
  enablePullRequestAutoMerge(input: {pullRequestId: $id, mergeMethod: $method, expectedHeadOid: $sha}) {
    pullRequest { number }
  }
}`

// AutoMerge enables auto-merge through the GraphQL API (the REST API has
// none). GitHub refuses it for a pull request that can be merged at once
// ("clean status"): that one is merged now. A repository without "Allow
// auto-merge" answers ErrNoAutoMerge.
func (g *gitHub) AutoMerge(ctx context.Context, number int, method MergeMethod, headSHA string) error {
	what := fmt.Sprintf("enable auto-merge of pull request #%d", number)
	pr, resp, err := g.c.PullRequests.Get(ctx, g.owner, g.repo, number)
	if err != nil {
		return g.fail(ctx, what, resp, err)
	}
	switch {
	case pr.GetMerged():
		return nil
	case pr.AutoMerge != nil:
		return nil // asked before
	}
	body := map[string]any{
		"query": autoMergeMutation,
		"variables": map[string]any{
			"id": pr.GetNodeID(), "method": strings.ToUpper(string(method)), "sha": headSHA,
		},
	}
	req, err := g.c.NewRequest(http.MethodPost, g.graphQLURL(), body)
	if err != nil {
		return retry.Permanent(fmt.Errorf("%s: %w", g.where(what), err))
	}
	var out struct {
		Errors []struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if resp, err := g.c.Do(ctx, req, &out); err != nil {
		return g.fail(ctx, what, resp, err)
	}
	if len(out.Errors) == 0 {
		return nil
	}
	var msgs []string
	for _, e := range out.Errors {
		msgs = append(msgs, e.Message)
	}
	msg := strings.Join(msgs, "; ")
	lower := strings.ToLower(msg)
	switch {
	case strings.Contains(lower, "clean status"):
		return g.Merge(ctx, number, method, headSHA)
	case strings.Contains(lower, "auto merge is not allowed"), strings.Contains(lower, "auto-merge is not allowed"):
		return retry.Permanent(fmt.Errorf("%s: %w: GitHub says %q: turn on \"Allow auto-merge\" in the repository's settings, or use merge: now", g.where(what), ErrNoAutoMerge, msg))
	case out.Errors[0].Type == "RATE_LIMITED":
		return retry.Retryable(fmt.Errorf("%s: GitHub's rate limit: %s", g.where(what), msg))
	case out.Errors[0].Type == "FORBIDDEN", strings.Contains(lower, "not accessible"):
		return retry.Permanent(fmt.Errorf("%s: GitHub refused: %s: the token needs pull_requests=write and contents=write (repo scope for a classic token)", g.where(what), msg))
	}
	return retry.Permanent(fmt.Errorf("%s: GitHub refused: %s", g.where(what), msg))
}

// graphQLURL is the GraphQL endpoint beside the REST base URL:
// https://api.github.com/graphql, or https://host/api/graphql on GitHub
// Enterprise Server.
func (g *gitHub) graphQLURL() string {
	u := *g.c.BaseURL
	if strings.HasSuffix(u.Path, "/api/v3/") {
		u.Path = strings.TrimSuffix(u.Path, "v3/") + "graphql"
	} else {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/graphql"
	}
	return u.String()
}

// Checks combines the commit statuses (GET /commits/{sha}/status) and the
// check runs (GET /commits/{sha}/check-runs) of sha. GitHub's own combined
// state is "pending" for a commit without statuses, so it is computed here
// from each one.
func (g *gitHub) Checks(ctx context.Context, sha string) (Checks, error) {
	var states []CheckState
	var lines []string
	what := fmt.Sprintf("read the statuses of %s", sha)
	opts := &github.ListOptions{PerPage: 100}
	for {
		cs, resp, err := g.c.Repositories.GetCombinedStatus(ctx, g.owner, g.repo, sha, opts)
		if err != nil {
			return Checks{}, g.fail(ctx, what, resp, err)
		}
		for _, s := range cs.Statuses {
			st := gitHubStatusState(s.GetState())
			states = append(states, st)
			lines = append(lines, checkLine(s.GetContext(), s.GetState(), s.GetDescription()))
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	what = fmt.Sprintf("read the check runs of %s", sha)
	copts := &github.ListCheckRunsOptions{Filter: github.Ptr("latest"), ListOptions: github.ListOptions{PerPage: 100}}
	for {
		runs, resp, err := g.c.Checks.ListCheckRunsForRef(ctx, g.owner, g.repo, sha, copts)
		if err != nil {
			return Checks{}, g.fail(ctx, what, resp, err)
		}
		for _, r := range runs.CheckRuns {
			st, word := gitHubCheckRunState(r.GetStatus(), r.GetConclusion())
			states = append(states, st)
			lines = append(lines, checkLine(r.GetName(), word, r.GetOutput().GetTitle()))
		}
		if resp.NextPage == 0 {
			break
		}
		copts.Page = resp.NextPage
	}
	return Checks{State: combineCheckStates(states), Lines: lines}, nil
}

// gitHubStatusState reads a commit status: error, failure, pending, success.
func gitHubStatusState(s string) CheckState {
	switch s {
	case "success":
		return Success
	case "failure", "error":
		return Failure
	}
	return Pending
}

// gitHubCheckRunState reads a check run: until completed it is pending;
// then neutral and skipped pass with success, and every other conclusion
// (failure, cancelled, timed_out, action_required, stale, startup_failure)
// fails. word is what the line says.
func gitHubCheckRunState(status, conclusion string) (CheckState, string) {
	if status != "completed" {
		return Pending, status
	}
	switch conclusion {
	case "success", "neutral", "skipped":
		return Success, conclusion
	}
	return Failure, conclusion
}

// checkLine is one status or check as Checks.Lines has it:
// "ci/test: failure: 2 tests failed".
func checkLine(name, state, description string) string {
	if description = strings.TrimSpace(description); description != "" {
		return name + ": " + state + ": " + description
	}
	return name + ": " + state
}

// combineCheckStates is the state of a set of statuses and checks: failure
// if any failed, else pending if any is pending, else success; none when
// there are none.
func combineCheckStates(states []CheckState) CheckState {
	out := None
	for _, s := range states {
		switch {
		case s == Failure:
			return Failure
		case s == Pending:
			out = Pending
		case s == Success && out == None:
			out = Success
		}
	}
	return out
}

// where is what was attempted on which repository.
func (g *gitHub) where(what string) string {
	return fmt.Sprintf("%s of %s/%s on %s", what, g.owner, g.repo, g.host)
}

// fail describes a failed call, naming the host and never the token: 5xx,
// 429, rate limits and a failed connection are retry.Retryable; 401, 403,
// 404 and 422 are retry.Permanent, saying what to check; a 403 names the
// permission GitHub says is missing (X-Accepted-GitHub-Permissions for
// fine-grained tokens and apps, X-Accepted-OAuth-Scopes for classic ones).
func (g *gitHub) fail(ctx context.Context, what string, resp *github.Response, err error) error {
	where := g.where(what)
	var er *github.ErrorResponse
	var rl *github.RateLimitError
	var abuse *github.AbuseRateLimitError
	switch {
	case ctx.Err() != nil: // the step's end is final; a dial timeout is not
		return retry.Permanent(fmt.Errorf("%s: %w", where, err))
	case errors.As(err, &rl):
		return retry.Retryable(fmt.Errorf("%s: GitHub's rate limit is used up until %s: %s", where, rl.Rate.Reset.Format("15:04:05 MST"), rl.Message))
	case errors.As(err, &abuse):
		return retry.Retryable(fmt.Errorf("%s: GitHub's secondary rate limit: %s", where, abuse.Message))
	case errors.As(err, &er) && er.Response != nil:
		return gitHubStatusError(where, er)
	case resp != nil && resp.Response != nil:
		return retry.Permanent(fmt.Errorf("%s: cannot read GitHub's answer (%d): %w", where, resp.StatusCode, err))
	}
	return retry.Retryable(fmt.Errorf("%s: the connection to %s failed: %w: check source.forge.url and that the server is up", where, g.host, err))
}

// gitHubStatusError describes an HTTP error answer of GitHub.
func gitHubStatusError(where string, er *github.ErrorResponse) error {
	code := er.Response.StatusCode
	answer := fmt.Sprintf("%d %s", code, http.StatusText(code))
	if msg := gitHubMessage(er); !strings.EqualFold(msg, http.StatusText(code)) { // "Not Found" once
		answer += ": " + msg
	}
	err := fmt.Errorf("%s: GitHub answered %s", where, answer)
	switch {
	case code == http.StatusUnauthorized:
		return retry.Permanent(fmt.Errorf("%w: the token was refused: check source.forge.token", err))
	case code == http.StatusForbidden:
		if p := er.Response.Header.Get("X-Accepted-GitHub-Permissions"); p != "" {
			return retry.Permanent(fmt.Errorf("%w: the token needs the permission %s", err, strings.ReplaceAll(p, ";", " or")))
		}
		if s := er.Response.Header.Get("X-Accepted-OAuth-Scopes"); s != "" {
			return retry.Permanent(fmt.Errorf("%w: the token needs the scope %s", err, s))
		}
		return retry.Permanent(fmt.Errorf("%w: check that the token may write pull requests of this repository", err))
	case code == http.StatusNotFound:
		return retry.Permanent(fmt.Errorf("%w: check the repository's owner and name, and that the token can see it (GitHub answers 404 to a token that cannot)", err))
	case code >= 500, code == http.StatusTooManyRequests:
		return retry.Retryable(err)
	}
	return retry.Permanent(err)
}

// gitHubMessage is GitHub's message with the details of its errors list.
func gitHubMessage(er *github.ErrorResponse) string {
	msg := strings.TrimRight(er.Message, ". ")
	for _, e := range er.Errors {
		d := e.Message
		if d == "" && e.Code != "" {
			d = strings.TrimSpace(e.Resource + " " + e.Field + " " + e.Code)
		}
		if d = strings.TrimRight(d, ". "); d != "" {
			msg += "; " + d
		}
	}
	if msg == "" {
		msg = "(no message)"
	}
	return msg
}
