package forge

// HTTP-level tests of the GitLab client against a fake of GitLab's REST API
// answering as its published docs show; see the top of github_test.go.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	gitlab "gitlab.com/gitlab-org/api/client-go"
)

const glToken = "glpat-s3cr3tTOKENthatMustNotLeak"

// A project in a subgroup: the project id is the URL-encoded path.
var glConfig = Config{Type: TypeGitLab, Token: glToken, Owner: "acme/platform", Repo: "config"}

func glAuth(r *http.Request) bool { return r.Header.Get("PRIVATE-TOKEN") == glToken }

const glAPI = "/api/v4/projects/acme%2Fplatform%2Fconfig"

// The merge request of testdata/gitlab/mr*.json as we read it.
var glMR = &PullRequest{
	Number: 7, URL: "https://gitlab.example.com/acme/platform/config/-/merge_requests/7", State: Open,
	Head: "gitops/web", Base: "main", HeadSHA: headSHA,
}

// GitLab's error bodies: https://docs.gitlab.com/api/rest/troubleshooting/ and
// https://docs.gitlab.com/api/rest/authentication/ (a token without the scope).
const (
	glUnauthorized      = `{"message": "401 Unauthorized"}`
	glForbidden         = `{"message": "403 Forbidden"}`
	glInsufficientScope = `{"error": "insufficient_scope", "error_description": "The request requires higher privileges than provided by the access token.", "scope": "api"}`
	glNotFound          = `{"message": "404 Project Not Found"}`
	glExists            = `{"message": ["Another open merge request already exists for this source branch: !7"]}`
)

func TestGitLabMergeRequests(t *testing.T) {
	findOpen := func(ctx context.Context, f Forge) (any, error) { return f.FindOpen(ctx, "gitops/web", "main") }
	open := func(ctx context.Context, f Forge) (any, error) {
		return f.Open(ctx, NewPullRequest{Title: "Deploy web 1.2.3", Body: "| image | from | to |", Head: "gitops/web", Base: "main", Labels: []string{"gitops", "prod"}})
	}
	update := func(labels ...string) func(ctx context.Context, f Forge) (any, error) {
		return func(ctx context.Context, f Forge) (any, error) {
			return f.Update(ctx, 7, NewPullRequest{Title: "Deploy web 1.2.4", Body: "new body", Head: "gitops/web", Base: "main", Labels: labels})
		}
	}
	get := func(ctx context.Context, f Forge) (any, error) { return f.Get(ctx, 7) }
	listQuery := "state=opened&source_branch=gitops/web&target_branch=main"
	createBody := `{"title": "Deploy web 1.2.3", "description": "| image | from | to |", "source_branch": "gitops/web", "target_branch": "main", "labels": "gitops,prod"}`

	runForgeCases(t, glConfig, glAuth, []forgeCase{
		{
			name:  "find our open merge request",
			calls: []apiCall{{method: "GET", path: glAPI + "/merge_requests", query: listQuery, reply: "gitlab/mrs.json"}},
			do:    findOpen, want: glMR,
		},
		{
			name:  "find none",
			calls: []apiCall{{method: "GET", path: glAPI + "/merge_requests", query: listQuery, reply: "[]"}},
			do:    findOpen, want: (*PullRequest)(nil),
		},
		{
			name:  "find in a project the token cannot see",
			calls: []apiCall{{method: "GET", path: glAPI + "/merge_requests", query: listQuery, status: 404, reply: glNotFound}},
			do:    findOpen,
			err:   []string{"list the open merge requests from gitops/web into main of acme/platform/config on", "GitLab answered 404 Not Found: check", "check the project path acme/platform/config"},
		},
		{
			name:  "open with labels",
			calls: []apiCall{{method: "POST", path: glAPI + "/merge_requests", body: createBody, status: 201, reply: "gitlab/mr.json"}},
			do:    open, want: glMR,
		},
		{
			name:  "open with a refused token",
			calls: []apiCall{{method: "POST", path: glAPI + "/merge_requests", body: createBody, status: 401, reply: glUnauthorized}},
			do:    open,
			err:   []string{"open a merge request from gitops/web into main of acme/platform/config", "GitLab answered 401 Unauthorized: the token was refused", "check source.forge.token"},
		},
		{
			name:  "open with a read-only token: the scope GitLab names",
			calls: []apiCall{{method: "POST", path: glAPI + "/merge_requests", body: createBody, status: 403, reply: glInsufficientScope}},
			do:    open,
			err:   []string{"403 Forbidden", "the token needs the scope api"},
		},
		{
			name:  "open forbidden to the token's user",
			calls: []apiCall{{method: "POST", path: glAPI + "/merge_requests", body: createBody, status: 403, reply: glForbidden}},
			do:    open,
			err:   []string{"403 Forbidden", "check the role of the token's user in acme/platform/config"},
		},
		{
			name:  "open when one exists: GitLab's message",
			calls: []apiCall{{method: "POST", path: glAPI + "/merge_requests", body: createBody, status: 409, reply: glExists}},
			do:    open,
			err:   []string{"409 Conflict", "Another open merge request already exists for this source branch: !7"},
		},
		{
			name:  "open on a failing server is retried",
			calls: []apiCall{{method: "POST", path: glAPI + "/merge_requests", body: createBody, status: 500, reply: `{"message": "500 Internal Server Error"}`}},
			do:    open, retryable: true,
			err: []string{"500 Internal Server Error"},
		},
		{
			name:  "open when rate limited is retried",
			calls: []apiCall{{method: "POST", path: glAPI + "/merge_requests", body: createBody, status: 429, reply: `{"message": "Retry later"}`}},
			do:    open, retryable: true,
			err: []string{"429 Too Many Requests: Retry later"},
		},
		{
			name:  "update replaces title, description and labels",
			calls: []apiCall{{method: "PUT", path: glAPI + "/merge_requests/7", body: `{"title": "Deploy web 1.2.4", "description": "new body", "labels": "gitops"}`, reply: "gitlab/mr.json"}},
			do:    update("gitops"), want: glMR,
		},
		{
			name:  "update without labels leaves them",
			calls: []apiCall{{method: "PUT", path: glAPI + "/merge_requests/7", body: `{"title": "Deploy web 1.2.4", "description": "new body"}`, reply: "gitlab/mr.json"}},
			do:    update(), want: glMR,
		},
		{
			name:  "get an open one",
			calls: []apiCall{{method: "GET", path: glAPI + "/merge_requests/7", reply: "gitlab/mr.json"}},
			do:    get, want: glMR,
		},
		{
			name:  "get a merged one: its merge commit",
			calls: []apiCall{{method: "GET", path: glAPI + "/merge_requests/7", reply: "gitlab/mr-merged.json"}},
			do:    get,
			want: func() *PullRequest {
				pr := *glMR
				pr.State, pr.MergeCommit = Merged, "e5bd3914e2e596debea16f433f57875b5b90bcd6"
				return &pr
			}(),
		},
	})
}

func TestGitLabMerge(t *testing.T) {
	merge := func(method MergeMethod) func(ctx context.Context, f Forge) (any, error) {
		return func(ctx context.Context, f Forge) (any, error) { return nil, f.Merge(ctx, 7, method, headSHA) }
	}
	autoMerge := func(ctx context.Context, f Forge) (any, error) { return nil, f.AutoMerge(ctx, 7, Squash, headSHA) }
	// https://docs.gitlab.com/api/merge_requests/#merge-a-merge-request
	accept := func(squash bool, status int, reply string) apiCall {
		body := `{"sha": "` + headSHA + `", "squash": false}`
		if squash {
			body = `{"sha": "` + headSHA + `", "squash": true}`
		}
		return apiCall{method: "PUT", path: glAPI + "/merge_requests/7/merge", body: body, status: status, reply: reply}
	}
	// detailed_merge_status: https://docs.gitlab.com/api/merge_requests/#merge-status
	why := func(state, status string) apiCall {
		return apiCall{method: "GET", path: glAPI + "/merge_requests/7",
			reply: `{"iid": 7, "state": "` + state + `", "detailed_merge_status": "` + status + `", "sha": "` + headSHA + `"}`}
	}

	runForgeCases(t, glConfig, glAuth, []forgeCase{
		{name: "merge", calls: []apiCall{accept(false, 200, "gitlab/mr-merged.json")}, do: merge(MergeCommit)},
		{name: "squash", calls: []apiCall{accept(true, 200, "gitlab/mr-merged.json")}, do: merge(Squash)},
		{name: "rebase is the project's merge method", calls: []apiCall{accept(false, 200, "gitlab/mr-merged.json")}, do: merge(Rebase)},
		{
			name:  "405 while the pipeline runs: retried",
			calls: []apiCall{accept(false, 405, `{"message": "405 Method Not Allowed"}`), why("opened", "ci_still_running")},
			do:    merge(MergeCommit), retryable: true,
			err: []string{"merge merge request !7 of acme/platform/config", "GitLab answered 405 Method Not Allowed: the merge request is opened", `detailed_merge_status "ci_still_running"`},
		},
		{
			name:  "422 while GitLab checks mergeability: retried",
			calls: []apiCall{accept(false, 422, `{"message": "Branch cannot be merged"}`), why("opened", "checking")},
			do:    merge(MergeCommit), retryable: true,
			err: []string{"GitLab answered 422 Unprocessable Entity: Branch cannot be merged", `"checking"`},
		},
		{
			name:  "405 for a draft: final, saying what to do",
			calls: []apiCall{accept(false, 405, `{"message": "405 Method Not Allowed"}`), why("opened", "draft_status")},
			do:    merge(MergeCommit),
			err:   []string{`"draft_status"`, "it is a draft: mark it ready"},
		},
		{
			name:  "405 for one closed: final",
			calls: []apiCall{accept(false, 405, `{"message": "405 Method Not Allowed"}`), why("closed", "not_open")},
			do:    merge(MergeCommit),
			err:   []string{"the merge request is closed"},
		},
		{
			name:  "406 conflicts: final",
			calls: []apiCall{accept(false, 406, `{"message": "Branch cannot be merged"}`)},
			do:    merge(MergeCommit),
			err:   []string{"GitLab answered 406 Not Acceptable: Branch cannot be merged", "conflicts with the target"},
		},
		{
			name:  "409 head changed: final",
			calls: []apiCall{accept(false, 409, `{"message": "SHA does not match HEAD of source branch: 0123456789abcdef0123456789abcdef01234567"}`)},
			do:    merge(MergeCommit),
			err:   []string{"its head is no longer " + headSHA, "SHA does not match HEAD of source branch"},
		},
		{
			name:  "401: the user may not merge",
			calls: []apiCall{accept(false, 401, glUnauthorized)},
			do:    merge(MergeCommit),
			err:   []string{"401 Unauthorized", "its user may not do this"},
		},
		{
			name:  "502: retried",
			calls: []apiCall{accept(false, 502, `{"message": "502 Bad Gateway"}`)},
			do:    merge(MergeCommit), retryable: true,
			err: []string{"GitLab answered 502 Bad Gateway"},
		},
		{
			name: "auto-merge: auto_merge, and merge_when_pipeline_succeeds for GitLab before 17",
			calls: []apiCall{{method: "PUT", path: glAPI + "/merge_requests/7/merge", reply: "gitlab/mr.json",
				body: `{"sha": "` + headSHA + `", "squash": true, "auto_merge": true, "merge_when_pipeline_succeeds": true}`}},
			do: autoMerge,
		},
		{
			name: "auto-merge needing approval: final",
			calls: []apiCall{{method: "PUT", path: glAPI + "/merge_requests/7/merge", status: 422, reply: `{"message": "Branch cannot be merged"}`,
				body: `{"sha": "` + headSHA + `", "squash": true, "auto_merge": true, "merge_when_pipeline_succeeds": true}`}, why("opened", "not_approved")},
			do:  autoMerge,
			err: []string{"set auto-merge of merge request !7", "it needs approval"},
		},
	})
}

func TestGitLabChecks(t *testing.T) {
	checks := func(ctx context.Context, f Forge) (any, error) { return f.Checks(ctx, headSHA) }
	pipelines := func(reply string) apiCall {
		return apiCall{method: "GET", path: glAPI + "/pipelines", query: "sha=" + headSHA + "&order_by=id&sort=desc&per_page=1", reply: reply}
	}
	statusesPath := glAPI + "/repository/commits/" + headSHA + "/statuses"
	statuses := func(reply string) apiCall {
		return apiCall{method: "GET", path: statusesPath, query: "per_page=100", reply: reply}
	}
	pipeline := func(status string) string {
		return `[{"id": 47, "iid": 12, "project_id": 3, "status": "` + status + `", "source": "push", "ref": "gitops/web", "sha": "` + headSHA + `", "web_url": "https://gitlab.example.com/acme/platform/config/-/pipelines/47"}]`
	}
	job := func(name, status string, allowFailure bool) string {
		af := "false"
		if allowFailure {
			af = "true"
		}
		return `{"id": 1, "sha": "` + headSHA + `", "ref": "gitops/web", "name": "` + name + `", "status": "` + status + `", "allow_failure": ` + af + `, "description": null}`
	}
	pipelineLine := func(status string) string {
		return "pipeline #47: " + status + ": https://gitlab.example.com/acme/platform/config/-/pipelines/47"
	}

	runForgeCases(t, glConfig, glAuth, []forgeCase{
		{
			name:  "the documented examples: running, one job allowed to fail",
			calls: []apiCall{pipelines("gitlab/pipelines.json"), statuses("gitlab/statuses.json")},
			do:    checks,
			want: Checks{State: Pending, Lines: []string{
				pipelineLine("running"),
				"bundler:audit: failed (allowed to fail)",
				"ci/deploy-preview: success: preview is up",
			}},
		},
		{
			name:  "no pipeline, no status: none",
			calls: []apiCall{pipelines("[]"), statuses("[]")},
			do:    checks, want: Checks{State: None},
		},
		{
			name:  "a passed pipeline",
			calls: []apiCall{pipelines(pipeline("success")), statuses("[" + job("test", "success", false) + "]")},
			do:    checks, want: Checks{State: Success, Lines: []string{pipelineLine("success"), "test: success"}},
		},
		{
			name:  "a failed job fails",
			calls: []apiCall{pipelines(pipeline("failed")), statuses("[" + job("test", "failed", false) + "," + job("lint", "success", false) + "]")},
			do:    checks, want: Checks{State: Failure, Lines: []string{pipelineLine("failed"), "test: failed", "lint: success"}},
		},
		{
			name:  "a manual job allowed to fail does not hold the checks",
			calls: []apiCall{pipelines(pipeline("success")), statuses("[" + job("deploy", "manual", true) + "]")},
			do:    checks, want: Checks{State: Success, Lines: []string{pipelineLine("success"), "deploy: manual (allowed to fail)"}},
		},
		{
			name: "statuses over two pages",
			calls: []apiCall{
				pipelines("[]"),
				{method: "GET", path: statusesPath, query: "per_page=100", header: map[string]string{"X-Next-Page": "2", "X-Page": "1", "X-Per-Page": "100"},
					reply: "[" + job("build", "success", false) + "]"},
				{method: "GET", path: statusesPath, query: "per_page=100&page=2", header: map[string]string{"X-Next-Page": "", "X-Page": "2", "X-Per-Page": "100"},
					reply: "[" + job("e2e", "running", false) + "]"},
			},
			do: checks, want: Checks{State: Pending, Lines: []string{"build: success", "e2e: running"}},
		},
		{
			name:  "pipelines forbidden",
			calls: []apiCall{{method: "GET", path: glAPI + "/pipelines", query: "sha=" + headSHA + "&order_by=id&sort=desc&per_page=1", status: 403, reply: glForbidden}},
			do:    checks,
			err:   []string{"list the pipelines of " + headSHA, "403 Forbidden"},
		},
	})
}

func TestFromGitLab(t *testing.T) {
	tests := []struct {
		name string
		mr   gitlab.BasicMergeRequest
		want State
		sha  string
	}{
		{"opened", gitlab.BasicMergeRequest{State: "opened", SHA: "h"}, Open, ""},
		{"locked while merging", gitlab.BasicMergeRequest{State: "locked", SHA: "h"}, Open, ""},
		{"closed", gitlab.BasicMergeRequest{State: "closed", SHA: "h"}, Closed, ""},
		{"merge commit", gitlab.BasicMergeRequest{State: "merged", SHA: "h", MergeCommitSHA: "m", SquashCommitSHA: "s"}, Merged, "m"},
		{"fast-forward, squashed", gitlab.BasicMergeRequest{State: "merged", SHA: "h", SquashCommitSHA: "s"}, Merged, "s"},
		{"fast-forward", gitlab.BasicMergeRequest{State: "merged", SHA: "h"}, Merged, "h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr := fromGitLab(&tt.mr)
			require.Equal(t, tt.want, pr.State)
			require.Equal(t, tt.sha, pr.MergeCommit)
		})
	}
}

func TestGitLabURLs(t *testing.T) {
	tests := []struct{ url, api string }{
		{"", "https://gitlab.com/api/v4/"},
		{"https://gitlab.com", "https://gitlab.com/api/v4/"},
		{"https://example.com/gitlab", "https://example.com/gitlab/api/v4/"},
	}
	for _, tt := range tests {
		cfg := glConfig
		cfg.URL = tt.url
		f, err := newGitLab(cfg, &http.Client{})
		require.NoError(t, err)
		require.Equal(t, tt.api, f.(*gitLab).c.BaseURL().String(), tt.url)
	}
}

// TestNewGitLabFromURI: New makes the GitLab client of a gitlab.com
// remote in a subgroup.
func TestNewGitLabFromURI(t *testing.T) {
	f, err := New(Config{RepoURL: "https://gitlab.com/acme/platform/config.git", Token: glToken}, nil)
	require.NoError(t, err)
	g := f.(*gitLab)
	require.Equal(t, "https://gitlab.com/api/v4/", g.c.BaseURL().String())
	require.Equal(t, "acme/platform/config", g.project)
}

// TestGitLabConnection: a forge that cannot be reached is retried.
func TestGitLabConnection(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.Listener.Addr().String()
	srv.Close()
	cfg := glConfig
	cfg.URL = srv.URL
	f, err := newGitLab(cfg, &http.Client{})
	require.NoError(t, err)
	_, err = f.Get(context.Background(), 7)
	require.Error(t, err)
	checkForgeError(t, err, glToken, addr, true)
	require.ErrorContains(t, err, "the connection to "+addr+" failed")
}
