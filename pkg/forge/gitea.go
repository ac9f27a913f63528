package forge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"code.gitea.io/sdk/gitea"

	"github.com/gitops-resource/gitops-resource/pkg/retry"
)

// giteaForge is a repository on Gitea or Forgejo (API v1, Gitea 1.22 or
// later), through code.gitea.io/sdk/gitea.
type giteaForge struct {
	cfg  Config
	hc   *http.Client
	host string // for errors
}

func newGitea(cfg Config, hc *http.Client) (Forge, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("source.forge.url %q: %w", redactURL(cfg.URL), err)
	}
	return &giteaForge{cfg: cfg, hc: hc, host: u.Host}, nil
}

// client is an SDK client for one call: the SDK takes its context per
// client, not per call. Building one does no I/O (the server's version is
// never asked: 1.22 or later is assumed).
func (g *giteaForge) client(ctx context.Context) *gitea.Client {
	c, err := gitea.NewClient(g.cfg.URL,
		gitea.SetHTTPClient(g.hc),
		gitea.SetToken(g.cfg.Token),
		gitea.SetContext(ctx),
		gitea.SetGiteaVersion(""),
		gitea.SetUserAgent("gitops-resource"))
	if err != nil { // no option above fails
		panic(fmt.Sprintf("gitea client: %v", err))
	}
	return c
}

func (g *giteaForge) repoName() string { return g.cfg.Owner + "/" + g.cfg.Repo }

func (g *giteaForge) FindOpen(ctx context.Context, head, base string) (*PullRequest, error) {
	c := g.client(ctx)
	for page := 1; ; page++ {
		prs, resp, err := c.ListRepoPullRequests(g.cfg.Owner, g.cfg.Repo, gitea.ListPullRequestsOptions{
			ListOptions: gitea.ListOptions{Page: page, PageSize: 50},
			State:       gitea.StateOpen,
		})
		if err != nil {
			return nil, g.fail(ctx, "list the open pull requests of "+g.repoName(), resp, err, needRead)
		}
		for _, p := range prs {
			if p.Head == nil || p.Base == nil || p.Head.Ref != head || p.Base.Ref != base || p.Head.RepoID != p.Base.RepoID {
				continue
			}
			return g.pullRequest(p), nil
		}
		if len(prs) == 0 || resp == nil || resp.NextPage == 0 {
			return nil, nil
		}
	}
}

func (g *giteaForge) Open(ctx context.Context, pr NewPullRequest) (*PullRequest, error) {
	c := g.client(ctx)
	what := fmt.Sprintf("open a pull request from %s into %s of %s", pr.Head, pr.Base, g.repoName())
	labels, err := g.labelIDs(ctx, c, pr.Labels)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	p, resp, err := c.CreatePullRequest(g.cfg.Owner, g.cfg.Repo, gitea.CreatePullRequestOption{
		Head: pr.Head, Base: pr.Base, Title: pr.Title, Body: pr.Body, Labels: labels,
	})
	if err != nil {
		return nil, g.fail(ctx, what, resp, err, needWrite)
	}
	return g.pullRequest(p), nil
}

func (g *giteaForge) Update(ctx context.Context, number int, pr NewPullRequest) (*PullRequest, error) {
	c := g.client(ctx)
	what := fmt.Sprintf("update pull request #%d of %s", number, g.repoName())
	labels, err := g.labelIDs(ctx, c, pr.Labels)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	body := pr.Body
	p, resp, err := c.EditPullRequest(g.cfg.Owner, g.cfg.Repo, int64(number), gitea.EditPullRequestOption{
		Title: pr.Title, Body: &body, Labels: labels,
	})
	if err != nil {
		return nil, g.fail(ctx, what, resp, err, needWrite)
	}
	return g.pullRequest(p), nil
}

func (g *giteaForge) Get(ctx context.Context, number int) (*PullRequest, error) {
	p, resp, err := g.client(ctx).GetPullRequest(g.cfg.Owner, g.cfg.Repo, int64(number))
	if err != nil {
		return nil, g.fail(ctx, fmt.Sprintf("get pull request #%d of %s", number, g.repoName()), resp, err, needRead)
	}
	return g.pullRequest(p), nil
}

// Merge merges through the API. A pull request merged already (by a person,
// or by an earlier attempt whose answer was lost) is no error.
func (g *giteaForge) Merge(ctx context.Context, number int, method MergeMethod, headSHA string) error {
	_, err := g.merge(ctx, fmt.Sprintf("merge pull request #%d of %s", number, g.repoName()), number, gitea.MergePullRequestOption{
		Style: giteaMergeStyle(method), HeadCommitId: headSHA,
	})
	return err
}

// AutoMerge schedules Gitea's "merge when checks succeed". Gitea merges at
// once when the checks have passed already, and answers a second schedule
// with 409, which is taken as done.
func (g *giteaForge) AutoMerge(ctx context.Context, number int, method MergeMethod, headSHA string) error {
	status, err := g.merge(ctx, fmt.Sprintf("schedule the auto-merge of pull request #%d of %s", number, g.repoName()), number, gitea.MergePullRequestOption{
		Style: giteaMergeStyle(method), HeadCommitId: headSHA, MergeWhenChecksSucceed: true,
	})
	var api *giteaError
	if status == http.StatusConflict && errors.As(err, &api) && strings.Contains(api.message, "already") {
		return nil
	}
	return err
}

func (g *giteaForge) Checks(ctx context.Context, sha string) (Checks, error) {
	cs, resp, err := g.client(ctx).GetCombinedStatus(g.cfg.Owner, g.cfg.Repo, sha)
	if err != nil {
		return Checks{}, g.fail(ctx, fmt.Sprintf("get the statuses of %s in %s", sha, g.repoName()), resp, err, needRead)
	}
	out := Checks{State: None}
	if cs.TotalCount > 0 || len(cs.Statuses) > 0 {
		switch cs.State {
		case gitea.StatusSuccess:
			out.State = Success
		case gitea.StatusPending:
			out.State = Pending
		default: // error, failure, warning: Gitea counts a warning as a failure
			out.State = Failure
		}
	}
	for _, s := range cs.Statuses {
		line := s.Context + ": " + string(s.State)
		if s.Description != "" {
			line += ": " + s.Description
		}
		out.Lines = append(out.Lines, line)
	}
	slices.Sort(out.Lines)
	return out, nil
}

func giteaMergeStyle(m MergeMethod) gitea.MergeStyle {
	switch m {
	case Squash:
		return gitea.MergeStyleSquash
	case Rebase:
		return gitea.MergeStyleRebase
	}
	return gitea.MergeStyleMerge
}

func (g *giteaForge) pullRequest(p *gitea.PullRequest) *PullRequest {
	out := &PullRequest{Number: int(p.Index), URL: p.HTMLURL, State: Open}
	if p.Head != nil {
		out.Head, out.HeadSHA = p.Head.Ref, p.Head.Sha
	}
	if p.Base != nil {
		out.Base = p.Base.Ref
	}
	switch {
	case p.HasMerged:
		out.State = Merged
		if p.MergedCommitID != nil {
			out.MergeCommit = *p.MergedCommitID
		}
	case p.State == gitea.StateClosed:
		out.State = Closed
	}
	return out
}

// labelIDs are the IDs of the repository's labels named names; the ones
// missing are created, as GitHub and GitLab do when a label is added.
func (g *giteaForge) labelIDs(ctx context.Context, c *gitea.Client, names []string) ([]int64, error) {
	ids := []int64{} // not nil: an update replaces the labels with none
	if len(names) == 0 {
		return ids, nil
	}
	have := map[string]int64{}
	for page := 1; ; page++ {
		labels, resp, err := c.ListRepoLabels(g.cfg.Owner, g.cfg.Repo, gitea.ListLabelsOptions{ListOptions: gitea.ListOptions{Page: page, PageSize: 50}})
		if err != nil {
			return nil, g.fail(ctx, "list the labels of "+g.repoName(), resp, err, needRead)
		}
		for _, l := range labels {
			have[l.Name] = l.ID
		}
		if len(labels) == 0 || resp == nil || resp.NextPage == 0 {
			break
		}
	}
	for _, name := range names {
		id, ok := have[name]
		if !ok {
			l, resp, err := c.CreateLabel(g.cfg.Owner, g.cfg.Repo, gitea.CreateLabelOption{Name: name, Color: "#ededed"})
			if err != nil {
				return nil, g.fail(ctx, fmt.Sprintf("create the label %q in %s", name, g.repoName()), resp, err, needWrite)
			}
			id = l.ID
			have[name] = id
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// merge posts a merge (or an auto-merge) itself: the SDK's MergePullRequest
// drops the body of a refusal, which says why (405 "Please try again
// later" is Gitea's transient one). It returns the answer's status.
func (g *giteaForge) merge(ctx context.Context, what string, number int, opt gitea.MergePullRequestOption) (int, error) {
	body, err := json.Marshal(opt)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	u := fmt.Sprintf("%s/api/v1/repos/%s/%s/pulls/%d/merge", g.cfg.URL, url.PathEscape(g.cfg.Owner), url.PathEscape(g.cfg.Repo), number)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("%s on %s: %w", what, g.host, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "token "+g.cfg.Token)
	req.Header.Set("User-Agent", "gitops-resource")
	resp, err := g.hc.Do(req)
	if err != nil {
		return 0, g.fail(ctx, what, nil, err, needMerge)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return resp.StatusCode, nil
	}
	var msg struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(data, &msg) != nil || msg.Message == "" {
		msg.Message = strings.TrimSpace(string(data))
	}
	api := &giteaError{status: resp.StatusCode, message: msg.Message}
	switch {
	case resp.StatusCode == http.StatusMethodNotAllowed && strings.Contains(strings.ToLower(msg.Message), "try again later"):
		// The pull request is still being checked: right after it was
		// opened or updated, or after another merge into its base.
		return resp.StatusCode, retry.Retryable(fmt.Errorf("%s on %s: %w (the pull request is still being checked)", what, g.host, api))
	case resp.StatusCode == http.StatusMethodNotAllowed && strings.Contains(msg.Message, "already merged"):
		// Merged meanwhile: by a person, or by an attempt whose answer was
		// lost. Get says by which commit.
		return resp.StatusCode, nil
	case resp.StatusCode == http.StatusMethodNotAllowed && strings.Contains(msg.Message, "not allowed to merge"):
		return resp.StatusCode, fmt.Errorf("%s on %s: %w: %s", what, g.host, api, needMerge.hint(g))
	case resp.StatusCode == http.StatusConflict && strings.Contains(msg.Message, "head out of date"):
		return resp.StatusCode, fmt.Errorf("%s on %s: %w: its head moved away from %s", what, g.host, api, opt.HeadCommitId)
	case resp.StatusCode == http.StatusNotFound:
		return resp.StatusCode, fmt.Errorf("%s on %s: %w: the pull request is closed or does not exist", what, g.host, api)
	}
	return resp.StatusCode, g.classify(what, resp.StatusCode, api, needMerge)
}

// giteaError is a refusal of Gitea's API: its status and message.
type giteaError struct {
	status  int
	message string
}

func (e *giteaError) Error() string {
	if e.message == "" {
		return fmt.Sprintf("%d %s", e.status, http.StatusText(e.status))
	}
	return fmt.Sprintf("%d %s: %s", e.status, http.StatusText(e.status), e.message)
}

// need is the access a call needs, for the error that says it is missing.
type need int

const (
	needRead need = iota
	needWrite
	needMerge
)

func (n need) hint(g *giteaForge) string {
	switch n {
	case needWrite:
		return fmt.Sprintf("check source.forge.token: its user needs write access to %s, and the token the scopes write:repository and write:issue", g.repoName())
	case needMerge:
		return fmt.Sprintf("check source.forge.token: its user needs write access to %s and to be allowed to merge into the base branch (branch protection), and the token the scope write:repository", g.repoName())
	}
	return fmt.Sprintf("check source.forge.token: its user needs read access to %s, and the token the scope read:repository", g.repoName())
}

// fail wraps an SDK call's error: what was done, on which host, why, and
// whether another try may go differently.
func (g *giteaForge) fail(ctx context.Context, what string, resp *gitea.Response, err error, n need) error {
	if resp == nil || resp.Response == nil {
		// No answer: the network, or a request the SDK refused to send.
		err = fmt.Errorf("%s on %s: %w", what, g.host, err)
		if ctx.Err() != nil {
			return err
		}
		return retry.Retryable(err)
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "unknown API error") {
		// The SDK's message of a body that is not JSON: "unknown API
		// error: <status>\nRequest: '<path>' with '<method>' method and
		// '<body>' body". The status is said anyway; keep the body.
		_, body, _ := strings.Cut(msg, " method and '")
		msg = strings.Join(strings.Fields(strings.TrimSuffix(body, "' body")), " ")
	}
	return g.classify(what, resp.StatusCode, &giteaError{status: resp.StatusCode, message: msg}, n)
}

// classify is the error of an answer with status: 401 and 403 name the
// access needed; 429 and 5xx may go differently next time.
func (g *giteaForge) classify(what string, status int, api *giteaError, n need) error {
	err := fmt.Errorf("%s on %s: %w", what, g.host, api)
	switch {
	case status == http.StatusUnauthorized:
		return fmt.Errorf("%w: the token was refused: check source.forge.token", err)
	case status == http.StatusForbidden:
		return fmt.Errorf("%w: %s", err, n.hint(g))
	case status == http.StatusNotFound:
		return fmt.Errorf("%w: check that %s exists on %s and that source.forge.token's user may read it", err, g.repoName(), g.host)
	case status == http.StatusTooManyRequests || status >= 500:
		return retry.Retryable(err)
	}
	return err
}
