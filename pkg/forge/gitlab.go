package forge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"

	gitlab "gitlab.com/gitlab-org/api/client-go"

	"github.com/gitops-resource/gitops-resource/pkg/retry"
)

// gitLab is a project on gitlab.com or a self-managed GitLab, through
// GitLab's client-go. Its own retries are off: one attempt per call, the
// caller retries what is marked retry.Retryable.
type gitLab struct {
	c       *gitlab.Client
	host    string
	project string // group/subgroup/repo; the client URL-encodes it as the project id
}

// newGitLab is the GitLab client of cfg: the REST API under cfg.URL's
// /api/v4/ (https://gitlab.com when cfg.URL is empty), authenticating with
// the PRIVATE-TOKEN header.
func newGitLab(cfg Config, hc *http.Client) (Forge, error) {
	base := cfg.URL
	if base == "" {
		base = "https://gitlab.com"
	}
	c, err := gitlab.NewClient(cfg.Token,
		gitlab.WithBaseURL(base),
		gitlab.WithHTTPClient(hc),
		gitlab.WithoutRetries(),                                    // pkg/retry is the one policy
		gitlab.WithURLWarningLogger(slog.New(slog.DiscardHandler)), // packages are silent
	)
	if err != nil {
		return nil, fmt.Errorf("source.forge.url %q: %w", redactURL(base), err)
	}
	return &gitLab{c: c, host: c.BaseURL().Host, project: cfg.Owner + "/" + cfg.Repo}, nil
}

func (g *gitLab) FindOpen(ctx context.Context, head, base string) (*PullRequest, error) {
	mrs, resp, err := g.c.MergeRequests.ListProjectMergeRequests(g.project, &gitlab.ListProjectMergeRequestsOptions{
		State: gitlab.Ptr("opened"), SourceBranch: gitlab.Ptr(head), TargetBranch: gitlab.Ptr(base),
	}, gitlab.WithContext(ctx))
	if err != nil {
		return nil, g.fail(ctx, fmt.Sprintf("list the open merge requests from %s into %s", head, base), resp, err)
	}
	for _, mr := range mrs {
		if mr.SourceBranch == head && mr.TargetBranch == base {
			return fromGitLab(mr), nil
		}
	}
	return nil, nil
}

func (g *gitLab) Open(ctx context.Context, npr NewPullRequest) (*PullRequest, error) {
	opts := &gitlab.CreateMergeRequestOptions{
		Title: gitlab.Ptr(npr.Title), Description: gitlab.Ptr(npr.Body),
		SourceBranch: gitlab.Ptr(npr.Head), TargetBranch: gitlab.Ptr(npr.Base),
	}
	if len(npr.Labels) > 0 {
		opts.Labels = gitlab.Ptr(gitlab.LabelOptions(npr.Labels))
	}
	mr, resp, err := g.c.MergeRequests.CreateMergeRequest(g.project, opts, gitlab.WithContext(ctx))
	if err != nil {
		return nil, g.fail(ctx, fmt.Sprintf("open a merge request from %s into %s", npr.Head, npr.Base), resp, err)
	}
	return fromGitLab(&mr.BasicMergeRequest), nil
}

// Update sets the title and description, and the labels when there are
// any (none leaves the ones a person set).
func (g *gitLab) Update(ctx context.Context, number int, npr NewPullRequest) (*PullRequest, error) {
	opts := &gitlab.UpdateMergeRequestOptions{Title: gitlab.Ptr(npr.Title), Description: gitlab.Ptr(npr.Body)}
	if len(npr.Labels) > 0 {
		opts.Labels = gitlab.Ptr(gitlab.LabelOptions(npr.Labels))
	}
	mr, resp, err := g.c.MergeRequests.UpdateMergeRequest(g.project, int64(number), opts, gitlab.WithContext(ctx))
	if err != nil {
		return nil, g.fail(ctx, fmt.Sprintf("update merge request !%d", number), resp, err)
	}
	return fromGitLab(&mr.BasicMergeRequest), nil
}

func (g *gitLab) Get(ctx context.Context, number int) (*PullRequest, error) {
	mr, err := g.get(ctx, number)
	if err != nil {
		return nil, err
	}
	return fromGitLab(&mr.BasicMergeRequest), nil
}

func (g *gitLab) get(ctx context.Context, number int) (*gitlab.MergeRequest, error) {
	mr, resp, err := g.c.MergeRequests.GetMergeRequest(g.project, int64(number), nil, gitlab.WithContext(ctx))
	if err != nil {
		return nil, g.fail(ctx, fmt.Sprintf("read merge request !%d", number), resp, err)
	}
	return mr, nil
}

// fromGitLab reads a merge request. A merged one's commit on the target is
// merge_commit_sha; with a fast-forward merge there is none, and it is
// squash_commit_sha when squashed, else the head itself. "locked" is the
// moment of the merge: still open.
func fromGitLab(mr *gitlab.BasicMergeRequest) *PullRequest {
	out := &PullRequest{
		Number: int(mr.IID), URL: mr.WebURL, State: Open,
		Head: mr.SourceBranch, Base: mr.TargetBranch, HeadSHA: mr.SHA,
	}
	switch mr.State {
	case "merged":
		out.State = Merged
		for _, sha := range []string{mr.MergeCommitSHA, mr.SquashCommitSHA, mr.SHA} {
			if sha != "" {
				out.MergeCommit = sha
				break
			}
		}
	case "closed":
		out.State = Closed
	}
	return out
}

// Merge accepts the merge request (PUT .../merge) if its head is still
// headSHA. GitLab has no per-request rebase: the project's merge method
// (merge commit, semi-linear, fast-forward) decides, so rebase is a merge
// without squash there.
func (g *gitLab) Merge(ctx context.Context, number int, method MergeMethod, headSHA string) error {
	return g.accept(ctx, fmt.Sprintf("merge merge request !%d", number), number, &gitlab.AcceptMergeRequestOptions{
		SHA: gitlab.Ptr(headSHA), Squash: gitlab.Ptr(method == Squash),
	})
}

// AutoMerge sets auto-merge (auto_merge, and merge_when_pipeline_succeeds
// for a GitLab before 17.0): GitLab merges once the checks pass, at once
// when they already have.
func (g *gitLab) AutoMerge(ctx context.Context, number int, method MergeMethod, headSHA string) error {
	return g.accept(ctx, fmt.Sprintf("set auto-merge of merge request !%d", number), number, &gitlab.AcceptMergeRequestOptions{
		SHA: gitlab.Ptr(headSHA), Squash: gitlab.Ptr(method == Squash),
		AutoMerge: gitlab.Ptr(true), MergeWhenPipelineSucceeds: gitlab.Ptr(true),
	})
}

// accept calls PUT .../merge. GitLab answers
// (https://docs.gitlab.com/api/merge_requests/#merge-a-merge-request): 401 when the user may not merge; 405 (422 on
// newer versions) when it cannot be merged now, and why is only in the
// merge request's detailed_merge_status, read here to tell waiting
// (checking, ci_still_running...) from a person's part (draft, conflict,
// approvals...); 406 when it conflicts; 409 when the head is no longer sha.
func (g *gitLab) accept(ctx context.Context, what string, number int, opts *gitlab.AcceptMergeRequestOptions) error {
	_, resp, err := g.c.MergeRequests.AcceptMergeRequest(g.project, int64(number), opts, gitlab.WithContext(ctx))
	if err == nil {
		return nil
	}
	code := 0
	if resp != nil && resp.Response != nil {
		code = resp.StatusCode
	}
	answer := gitLabAnswer(code, err)
	switch code {
	case http.StatusConflict:
		return retry.Permanent(fmt.Errorf("%s: its head is no longer %s (GitLab answered %s): someone pushed to the merge request's branch", g.where(what), *opts.SHA, answer))
	case http.StatusNotAcceptable:
		return retry.Permanent(fmt.Errorf("%s: GitLab answered %s: the branch conflicts with the target: resolve it, or close the merge request for the next put to open a new one", g.where(what), answer))
	case http.StatusMethodNotAllowed, http.StatusUnprocessableEntity:
		mr, gerr := g.get(ctx, number)
		if gerr != nil {
			return retry.Retryable(fmt.Errorf("%s: GitLab answered %s, and reading why failed: %w", g.where(what), answer, gerr))
		}
		status := mr.DetailedMergeStatus
		err := fmt.Errorf("%s: GitLab answered %s: the merge request is %s (detailed_merge_status %q)", g.where(what), answer, mr.State, status)
		if mr.State != "opened" && mr.State != "locked" {
			return retry.Permanent(err)
		}
		if hint, stuck := gitLabStuck[status]; stuck {
			return retry.Permanent(fmt.Errorf("%w: %s", err, hint))
		}
		return retry.Retryable(err)
	}
	return g.fail(ctx, what, resp, err)
}

// gitLabStuck are the detailed_merge_status values waiting does not
// change (https://docs.gitlab.com/api/merge_requests/#merge-status), with
// what a person has to do. Every other status (checking, unchecked,
// ci_still_running, ci_must_pass, approvals_syncing, preparing, mergeable)
// may pass by itself.
var gitLabStuck = map[string]string{
	"not_open":                   "it is not open",
	"draft_status":               "it is a draft: mark it ready",
	"conflict":                   "it conflicts with the target branch",
	"need_rebase":                "it needs a rebase onto the target branch",
	"not_approved":               "it needs approval",
	"requested_changes":          "a reviewer requested changes",
	"discussions_not_resolved":   "its discussions must be resolved",
	"blocked_status":             "another merge request blocks it",
	"jira_association_missing":   "its title or description must name a Jira issue",
	"merge_time":                 "it may not be merged before its set time",
	"security_policy_violations": "a security policy blocks it",
	"locked_paths":               "it changes locked paths",
	"locked_lfs_files":           "it changes locked LFS files",
	"title_regex":                "its title does not match the project's required pattern",
}

// Checks combines the newest pipeline of sha (GET .../pipelines?sha=) and
// the commit statuses of sha (GET .../repository/commits/:sha/statuses: its
// jobs and external statuses, the latest of each name). A failed job that
// is allowed to fail, and a manual one that is, do not fail the checks.
func (g *gitLab) Checks(ctx context.Context, sha string) (Checks, error) {
	var states []CheckState
	var lines []string
	pipelines, resp, err := g.c.Pipelines.ListProjectPipelines(g.project, &gitlab.ListProjectPipelinesOptions{
		SHA: gitlab.Ptr(sha), OrderBy: gitlab.Ptr("id"), Sort: gitlab.Ptr("desc"),
		ListOptions: gitlab.ListOptions{PerPage: 1},
	}, gitlab.WithContext(ctx))
	if err != nil {
		return Checks{}, g.fail(ctx, fmt.Sprintf("list the pipelines of %s", sha), resp, err)
	}
	if len(pipelines) > 0 {
		p := pipelines[0]
		states = append(states, gitLabPipelineState(p.Status))
		lines = append(lines, checkLine(fmt.Sprintf("pipeline #%d", p.ID), p.Status, p.WebURL))
	}
	opts := &gitlab.GetCommitStatusesOptions{ListOptions: gitlab.ListOptions{PerPage: 100}}
	for {
		statuses, resp, err := g.c.Commits.GetCommitStatuses(g.project, sha, opts, gitlab.WithContext(ctx))
		if err != nil {
			return Checks{}, g.fail(ctx, fmt.Sprintf("read the statuses of %s", sha), resp, err)
		}
		for _, s := range statuses {
			st, word := gitLabStatusState(s.Status, s.AllowFailure)
			states = append(states, st)
			lines = append(lines, checkLine(s.Name, word, s.Description))
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	return Checks{State: combineCheckStates(states), Lines: lines}, nil
}

// gitLabPipelineState reads a pipeline's status: success and skipped pass,
// failed and canceled fail, everything else (created, pending, running,
// manual, scheduled...) is still to come.
func gitLabPipelineState(status string) CheckState {
	switch status {
	case "success", "skipped":
		return Success
	case "failed", "canceled":
		return Failure
	}
	return Pending
}

// gitLabStatusState reads a commit status or job, and says what its line
// says.
func gitLabStatusState(status string, allowFailure bool) (CheckState, string) {
	switch {
	case status == "success", status == "skipped":
		return Success, status
	case (status == "failed" || status == "canceled" || status == "manual") && allowFailure:
		return Success, status + " (allowed to fail)"
	case status == "failed", status == "canceled":
		return Failure, status
	}
	return Pending, status
}

func (g *gitLab) where(what string) string {
	return fmt.Sprintf("%s of %s on %s", what, g.project, g.host)
}

// fail describes a failed call, naming the host and never the token: 5xx,
// 429 and a failed connection are retry.Retryable; 401, 403, 404 and the
// other refusals are retry.Permanent, saying what to check. A 403 names
// the scope GitLab says is missing.
func (g *gitLab) fail(ctx context.Context, what string, resp *gitlab.Response, err error) error {
	where := g.where(what)
	if ctx.Err() != nil { // the step's end is final; a dial timeout is not
		return retry.Permanent(fmt.Errorf("%s: %w", where, err))
	}
	if resp == nil || resp.Response == nil {
		return retry.Retryable(fmt.Errorf("%s: the connection to %s failed: %w: check source.forge.url and that the server is up", where, g.host, err))
	}
	code := resp.StatusCode
	base := fmt.Errorf("%s: GitLab answered %s", where, gitLabAnswer(code, err))
	switch {
	case code == http.StatusUnauthorized:
		return retry.Permanent(fmt.Errorf("%w: the token was refused, or its user may not do this: check source.forge.token", base))
	case code == http.StatusForbidden:
		if scope := gitLabScope(err); scope != "" {
			return retry.Permanent(fmt.Errorf("%w: the token needs the scope %s", base, scope))
		}
		return retry.Permanent(fmt.Errorf("%w: check the role of the token's user in %s (Developer opens merge requests; merging into a protected branch may need Maintainer)", base, g.project))
	case code == http.StatusNotFound:
		return retry.Permanent(fmt.Errorf("%w: check the project path %s and that the token can see it (GitLab answers 404 to a token that cannot)", base, g.project))
	case code >= 500, code == http.StatusTooManyRequests:
		return retry.Retryable(base)
	case code >= 200 && code < 300:
		return retry.Permanent(fmt.Errorf("%s: cannot read GitLab's answer: %w", where, err))
	}
	return retry.Permanent(base)
}

// gitLabAnswer is the status and what GitLab said ("406 Not Acceptable:
// Branch cannot be merged"), once where GitLab's message is the status
// ("401 Unauthorized").
func gitLabAnswer(code int, err error) string {
	msg := gitLabMessage(err)
	if strings.HasPrefix(msg, strconv.Itoa(code)+" ") {
		return msg
	}
	return fmt.Sprintf("%d %s: %s", code, http.StatusText(code), msg)
}

// gitLabMessage is what GitLab said: its body's "message" (a string, a
// list, or field: messages) or "error" and "error_description", without
// the request line client-go puts before it.
func gitLabMessage(err error) string {
	var er *gitlab.ErrorResponse
	switch {
	case errors.As(err, &er):
		var body struct {
			Message     any    `json:"message"`
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(er.Body, &body) == nil {
			if msg := flattenGitLabMessage(body.Message); msg != "" {
				return msg
			}
			if body.Error != "" {
				return strings.TrimRight(body.Error+": "+body.Description, ".: ")
			}
		}
		if er.Message != "" {
			return er.Message
		}
		return "(no message)"
	case errors.Is(err, gitlab.ErrNotFound):
		return "404 Not Found"
	}
	return err.Error()
}

// flattenGitLabMessage reads GitLab's "message", which is a string, a list
// of them, or an object of field: list.
func flattenGitLabMessage(m any) string {
	switch m := m.(type) {
	case string:
		return m
	case []any:
		var parts []string
		for _, v := range m {
			if s := flattenGitLabMessage(v); s != "" {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, "; ")
	case map[string]any:
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, k+" "+flattenGitLabMessage(m[k]))
		}
		return strings.Join(parts, "; ")
	}
	return ""
}

// gitLabScope is the scope a 403 asks for: GitLab answers a token without
// it {"error": "insufficient_scope", ..., "scope": "api"}.
func gitLabScope(err error) string {
	var er *gitlab.ErrorResponse
	if !errors.As(err, &er) {
		return ""
	}
	var body struct {
		Scope string `json:"scope"`
	}
	if json.Unmarshal(er.Body, &body) != nil {
		return ""
	}
	return strings.TrimSpace(body.Scope)
}
