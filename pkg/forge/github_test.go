package forge

// GitHub and GitLab cannot be reached from where these tests run, so their
// clients are tested at the HTTP level: a fake of each REST API (an
// httptest server) answers with the response shapes of the forge's
// published API documentation (testdata/github, testdata/gitlab, each file
// naming its page; error bodies inline, each naming its page) and asserts
// the requests we send — method, path, query, body and the token's header.
// They prove we speak each API as documented, not that the forge behaves as
// documented; what is forge-independent is proven against a real Gitea.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/pkg/retry"
)

// apiCall is one request we must send, and the fake forge's answer.
type apiCall struct {
	method, path string            // the path as sent, escaped
	query        string            // the query we must send, compared as values; "" none
	body         string            // the JSON we must send, compared as JSON; "" none
	status       int               // 0: 200
	header       map[string]string // the answer's headers
	reply        string            // a file under testdata/ or inline JSON; "" none
}

// serveAPI is a fake forge API answering calls in order; any other request,
// a wrong credential header (authOK), or a call left unmade fails t.
func serveAPI(t *testing.T, authOK func(*http.Request) bool, calls []apiCall) *httptest.Server {
	t.Helper()
	var mu sync.Mutex
	next := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		got := r.Method + " " + r.URL.EscapedPath()
		if next >= len(calls) {
			t.Errorf("unexpected request %s?%s", got, r.URL.RawQuery)
			http.Error(w, `{"message":"unexpected request"}`, http.StatusTeapot)
			return
		}
		c := calls[next]
		next++
		assert.Equal(t, c.method+" "+c.path, got, "request %d", next)
		assert.True(t, authOK(r), "request %d (%s) carries the token in the forge's header", next, got)
		want, err := url.ParseQuery(c.query)
		assert.NoError(t, err)
		assert.Equal(t, want, r.URL.Query(), "query of %s", got)
		body, _ := io.ReadAll(r.Body)
		if c.body == "" {
			assert.Empty(t, strings.TrimSpace(string(body)), "body of %s", got)
		} else {
			assert.JSONEq(t, c.body, string(body), "body of %s", got)
		}
		for k, v := range c.header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(max(c.status, http.StatusOK))
		_, _ = io.WriteString(w, reply(t, c.reply))
	}))
	t.Cleanup(func() {
		srv.Close()
		mu.Lock()
		defer mu.Unlock()
		if next < len(calls) {
			t.Errorf("%d of %d requests not sent; the next: %s %s", len(calls)-next, len(calls), calls[next].method, calls[next].path)
		}
	})
	return srv
}

// reply is an answer's body: inline JSON, or a testdata file without its
// leading "//" comment lines (which name the documentation page). It runs
// in the server's goroutine: it reports with assert, never require.
func reply(t *testing.T, r string) string {
	if r == "" || strings.HasPrefix(r, "{") || strings.HasPrefix(r, "[") {
		return r
	}
	b, err := os.ReadFile(filepath.Join("testdata", r))
	assert.NoError(t, err)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "//") {
			out = append(out, line)
		}
	}
	body := strings.Join(out, "\n")
	assert.True(t, json.Valid([]byte(body)), "testdata/%s is JSON after its comments", r)
	return body
}

// forgeCase is one table row of the GitHub and GitLab tests.
type forgeCase struct {
	name  string
	calls []apiCall
	do    func(context.Context, Forge) (any, error)
	want  any
	err   []string // each must appear in the error; nil: no error
	// retryable: the error is retry.Retryable (and not Permanent); else it
	// must be retry.Permanent.
	retryable bool
	is        error // errors.Is(err, is) when set
}

// runForgeCases runs cases against a fake API, with the client New makes
// of cfg with cfg.URL the fake's.
func runForgeCases(t *testing.T, cfg Config, authOK func(*http.Request) bool, cases []forgeCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := serveAPI(t, authOK, tc.calls)
			cfg := cfg
			cfg.URL = srv.URL
			f, err := New(cfg, srv.Client())
			require.NoError(t, err)
			got, err := tc.do(context.Background(), f)
			if tc.err == nil {
				require.NoError(t, err)
				assert.Equal(t, tc.want, got)
				return
			}
			require.Error(t, err)
			t.Logf("error: %v", err)
			checkForgeError(t, err, cfg.Token, srv.Listener.Addr().String(), tc.retryable)
			for _, s := range tc.err {
				assert.Contains(t, err.Error(), s)
			}
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
			}
		})
	}
}

// checkForgeError: an error names the host, never the token, and is
// marked Retryable or Permanent as the caller's retry loop needs.
func checkForgeError(t *testing.T, err error, token, host string, retryable bool) {
	t.Helper()
	assert.NotContains(t, err.Error(), token)
	assert.Contains(t, err.Error(), host)
	if retryable {
		assert.True(t, retry.IsRetryable(err), "retryable: %v", err)
		assert.False(t, retry.IsPermanent(err), "not permanent: %v", err)
	} else {
		assert.True(t, retry.IsPermanent(err), "permanent: %v", err)
	}
}

const (
	ghToken = "ghp_s3cr3tTOKENthatMustNotLeak"
	headSHA = "6dcb09b5b57875f334f61aebed695e2e4193db5e"
	nodeID  = "MDExOlB1bGxSZXF1ZXN0MQ=="
)

var ghConfig = Config{Type: TypeGitHub, Token: ghToken, Owner: "acme", Repo: "config"}

func ghAuth(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer "+ghToken }

// The pull request of testdata/github/pull*.json as we read it.
var ghPR = &PullRequest{
	Number: 7, URL: "https://github.com/acme/config/pull/7", State: Open,
	Head: "gitops/web", Base: "main", HeadSHA: headSHA,
}

func withPR(f func(*PullRequest)) *PullRequest {
	pr := *ghPR
	f(&pr)
	return &pr
}

const ghAPI = "/api/v3/repos/acme/config" // GitHub Enterprise Server's REST API

// GitHub's error bodies: https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api
// and the merge endpoint's: https://docs.github.com/en/rest/pulls/pulls#merge-a-pull-request
const (
	ghBadCredentials = `{"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"}`
	ghNotAccessible  = `{"message": "Resource not accessible by personal access token", "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request", "status": "403"}`
	ghNotFound       = `{"message": "Not Found", "documentation_url": "https://docs.github.com/rest/pulls/pulls#get-a-pull-request", "status": "404"}`
	ghBaseModified   = `{"message": "Base branch was modified. Review and try the merge again.", "documentation_url": "https://docs.github.com/rest/pulls/pulls#merge-a-pull-request", "status": "405"}`
	ghNotMergeable   = `{"message": "Pull Request is not mergeable", "documentation_url": "https://docs.github.com/rest/pulls/pulls#merge-a-pull-request", "status": "405"}`
	ghNeedsReview    = `{"message": "At least 1 approving review is required by reviewers with write access.", "documentation_url": "https://docs.github.com/rest/pulls/pulls#merge-a-pull-request", "status": "405"}`
	ghNoRebase       = `{"message": "Rebase merges are not allowed on this repository.", "documentation_url": "https://docs.github.com/rest/pulls/pulls#merge-a-pull-request", "status": "405"}`
	ghHeadModified   = `{"message": "Head branch was modified. Review and try the merge again.", "documentation_url": "https://docs.github.com/rest/pulls/pulls#merge-a-pull-request", "status": "409"}`
	ghExists         = `{"message": "Validation Failed", "errors": [{"resource": "PullRequest", "code": "custom", "message": "A pull request already exists for acme:gitops/web"}], "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request", "status": "422"}`
	ghRateLimited    = `{"message": "API rate limit exceeded for user ID 1.", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api", "status": "403"}`
)

func TestGitHubPullRequests(t *testing.T) {
	findOpen := func(ctx context.Context, f Forge) (any, error) { return f.FindOpen(ctx, "gitops/web", "main") }
	open := func(ctx context.Context, f Forge) (any, error) {
		return f.Open(ctx, NewPullRequest{Title: "Deploy web 1.2.3", Body: "| image | from | to |", Head: "gitops/web", Base: "main", Labels: []string{"gitops"}})
	}
	update := func(labels ...string) func(ctx context.Context, f Forge) (any, error) {
		return func(ctx context.Context, f Forge) (any, error) {
			return f.Update(ctx, 7, NewPullRequest{Title: "Deploy web 1.2.4", Body: "new body", Head: "gitops/web", Base: "main", Labels: labels})
		}
	}
	get := func(ctx context.Context, f Forge) (any, error) { return f.Get(ctx, 7) }
	listQuery := "state=open&head=acme:gitops/web&base=main"
	createBody := `{"title": "Deploy web 1.2.3", "body": "| image | from | to |", "head": "gitops/web", "base": "main"}`

	runForgeCases(t, ghConfig, ghAuth, []forgeCase{
		{
			name:  "find our open pull request",
			calls: []apiCall{{method: "GET", path: ghAPI + "/pulls", query: listQuery, reply: "github/pulls.json"}},
			do:    findOpen, want: ghPR,
		},
		{
			name:  "find none",
			calls: []apiCall{{method: "GET", path: ghAPI + "/pulls", query: listQuery, reply: "[]"}},
			do:    findOpen, want: (*PullRequest)(nil),
		},
		{
			name:  "find with a refused token",
			calls: []apiCall{{method: "GET", path: ghAPI + "/pulls", query: listQuery, status: 401, reply: ghBadCredentials}},
			do:    findOpen,
			err:   []string{"list the open pull requests from gitops/web into main of acme/config on", "401 Unauthorized: Bad credentials", "check source.forge.token"},
		},
		{
			name: "open, then label through the issues API",
			calls: []apiCall{
				{method: "POST", path: ghAPI + "/pulls", body: createBody, status: 201, reply: "github/pull.json"},
				{method: "POST", path: ghAPI + "/issues/7/labels", body: `["gitops"]`, reply: "github/labels.json"},
			},
			do: open, want: ghPR,
		},
		{
			name:  "open refused for a missing permission: the one GitHub names",
			calls: []apiCall{{method: "POST", path: ghAPI + "/pulls", body: createBody, status: 403, reply: ghNotAccessible, header: map[string]string{"X-Accepted-GitHub-Permissions": "pull_requests=write"}}},
			do:    open,
			err:   []string{"open a pull request from gitops/web into main", "403 Forbidden: Resource not accessible by personal access token", "the token needs the permission pull_requests=write"},
		},
		{
			name:  "open refused, alternatives",
			calls: []apiCall{{method: "POST", path: ghAPI + "/pulls", body: createBody, status: 403, reply: ghNotAccessible, header: map[string]string{"X-Accepted-GitHub-Permissions": "pull_requests=write; contents=write"}}},
			do:    open,
			err:   []string{"the token needs the permission pull_requests=write or contents=write"},
		},
		{
			name:  "open refused to a classic token: the scope GitHub names",
			calls: []apiCall{{method: "POST", path: ghAPI + "/pulls", body: createBody, status: 403, reply: ghNotAccessible, header: map[string]string{"X-Accepted-OAuth-Scopes": "repo", "X-OAuth-Scopes": "read:org"}}},
			do:    open,
			err:   []string{"the token needs the scope repo"},
		},
		{
			name:  "open when one exists: GitHub's validation errors",
			calls: []apiCall{{method: "POST", path: ghAPI + "/pulls", body: createBody, status: 422, reply: ghExists}},
			do:    open,
			err:   []string{"422 Unprocessable Entity: Validation Failed; A pull request already exists for acme:gitops/web"},
		},
		{
			name:  "open on a failing server is retried",
			calls: []apiCall{{method: "POST", path: ghAPI + "/pulls", body: createBody, status: 502, reply: `{"message": "Server Error"}`}},
			do:    open, retryable: true,
			err: []string{"502 Bad Gateway: Server Error"},
		},
		{
			name: "open with the rate limit used up is retried",
			calls: []apiCall{{method: "POST", path: ghAPI + "/pulls", body: createBody, status: 403, reply: ghRateLimited,
				header: map[string]string{"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1700000000"}}},
			do: open, retryable: true,
			err: []string{"GitHub's rate limit is used up", "API rate limit exceeded"},
		},
		{
			name: "update replaces title, body and labels",
			calls: []apiCall{
				{method: "PATCH", path: ghAPI + "/pulls/7", body: `{"title": "Deploy web 1.2.4", "body": "new body"}`, reply: "github/pull.json"},
				{method: "PUT", path: ghAPI + "/issues/7/labels", body: `["gitops"]`, reply: "github/labels.json"},
			},
			do: update("gitops"), want: ghPR,
		},
		{
			name:  "update without labels leaves them",
			calls: []apiCall{{method: "PATCH", path: ghAPI + "/pulls/7", body: `{"title": "Deploy web 1.2.4", "body": "new body"}`, reply: "github/pull.json"}},
			do:    update(), want: ghPR,
		},
		{
			name:  "get an open one",
			calls: []apiCall{{method: "GET", path: ghAPI + "/pulls/7", reply: "github/pull.json"}},
			do:    get, want: ghPR,
		},
		{
			name:  "get a merged one: its merge commit",
			calls: []apiCall{{method: "GET", path: ghAPI + "/pulls/7", reply: "github/pull-merged.json"}},
			do:    get,
			want:  withPR(func(pr *PullRequest) { pr.State, pr.MergeCommit = Merged, "e5bd3914e2e596debea16f433f57875b5b90bcd6" }),
		},
		{
			name:  "get one closed unmerged",
			calls: []apiCall{{method: "GET", path: ghAPI + "/pulls/7", reply: "github/pull-closed.json"}},
			do:    get, want: withPR(func(pr *PullRequest) { pr.State = Closed }),
		},
		{
			name:  "get one the token cannot see",
			calls: []apiCall{{method: "GET", path: ghAPI + "/pulls/7", status: 404, reply: ghNotFound}},
			do:    get,
			err:   []string{"read pull request #7 of acme/config", "404 Not Found", "that the token can see it"},
		},
	})
}

func TestGitHubMerge(t *testing.T) {
	merge := func(ctx context.Context, f Forge) (any, error) { return nil, f.Merge(ctx, 7, Squash, headSHA) }
	autoMerge := func(ctx context.Context, f Forge) (any, error) { return nil, f.AutoMerge(ctx, 7, Rebase, headSHA) }
	mergeCall := func(status int, reply string) apiCall {
		return apiCall{method: "PUT", path: ghAPI + "/pulls/7/merge", body: `{"sha": "` + headSHA + `", "merge_method": "squash"}`, status: status, reply: reply}
	}
	getPR := apiCall{method: "GET", path: ghAPI + "/pulls/7", reply: "github/pull.json"}
	// https://docs.github.com/en/graphql/reference/mutations#enablepullrequestautomerge
	enableStatus := func(status int, reply string) apiCall {
		body, err := json.Marshal(map[string]any{"query": autoMergeMutation, "variables": map[string]any{"id": nodeID, "method": "REBASE", "sha": headSHA}})
		require.NoError(t, err)
		return apiCall{method: "POST", path: "/api/graphql", body: string(body), status: status, reply: reply}
	}
	enable := func(reply string) apiCall { return enableStatus(200, reply) }
	// GraphQL answers 200 with "errors": https://docs.github.com/en/graphql/guides/forming-calls-with-graphql
	gqlError := func(typ, msg string) string {
		return `{"data": {"enablePullRequestAutoMerge": null}, "errors": [{"type": "` + typ + `", "path": ["enablePullRequestAutoMerge"], "locations": [{"line": 2, "column": 3}], "message": "` + msg + `"}]}`
	}

	runForgeCases(t, ghConfig, ghAuth, []forgeCase{
		{name: "merge with the head we pushed", calls: []apiCall{mergeCall(200, "github/merge.json")}, do: merge},
		{
			name: "base branch modified: retried", calls: []apiCall{mergeCall(405, ghBaseModified)}, do: merge, retryable: true,
			err: []string{"merge pull request #7 of acme/config", "GitHub cannot merge it now (405): Base branch was modified"},
		},
		{
			name: "not mergeable yet: retried", calls: []apiCall{mergeCall(405, ghNotMergeable)}, do: merge, retryable: true,
			err: []string{"cannot merge it now (405): Pull Request is not mergeable"},
		},
		{
			name: "a review is missing: final", calls: []apiCall{mergeCall(405, ghNeedsReview)}, do: merge,
			err: []string{"At least 1 approving review is required", "needs an approving review"},
		},
		{
			name: "a merge method the repository does not allow: final", calls: []apiCall{mergeCall(405, ghNoRebase)}, do: merge,
			err: []string{"Rebase merges are not allowed on this repository", "pull_request.method"},
		},
		{
			name: "head changed: final", calls: []apiCall{mergeCall(409, ghHeadModified)}, do: merge,
			err: []string{"its head is no longer " + headSHA, "Head branch was modified"},
		},
		{
			name: "a server error: retried", calls: []apiCall{mergeCall(503, `{"message": "Service Unavailable"}`)}, do: merge, retryable: true,
			err: []string{"503 Service Unavailable"},
		},
		{
			name: "merged: false in a 200", calls: []apiCall{mergeCall(200, `{"merged": false, "message": "nothing to merge"}`)}, do: merge,
			err: []string{"did not merge it: nothing to merge"},
		},
		{
			name:  "auto-merge through GraphQL, pinned to our head",
			calls: []apiCall{getPR, enable(`{"data": {"enablePullRequestAutoMerge": {"pullRequest": {"number": 7}}}}`)},
			do:    autoMerge,
		},
		{
			name:  "auto-merge of one already merged asks nothing",
			calls: []apiCall{{method: "GET", path: ghAPI + "/pulls/7", reply: "github/pull-merged.json"}},
			do:    autoMerge,
		},
		{
			name: "auto-merge refused for a clean pull request: merged now",
			calls: []apiCall{
				getPR, enable(gqlError("UNPROCESSABLE", "Pull request Pull request is in clean status")),
				{method: "PUT", path: ghAPI + "/pulls/7/merge", body: `{"sha": "` + headSHA + `", "merge_method": "rebase"}`, reply: "github/merge.json"},
			},
			do: autoMerge,
		},
		{
			name:  "auto-merge not allowed in the repository",
			calls: []apiCall{getPR, enable(gqlError("UNPROCESSABLE", "Pull request Auto merge is not allowed for this repository"))},
			do:    autoMerge, is: ErrNoAutoMerge,
			err: []string{"enable auto-merge of pull request #7", "Allow auto-merge", "merge: now"},
		},
		{
			name:  "auto-merge forbidden to the token",
			calls: []apiCall{getPR, enable(gqlError("FORBIDDEN", "Resource not accessible by personal access token"))},
			do:    autoMerge,
			err:   []string{"Resource not accessible", "pull_requests=write"},
		},
		{
			name:  "auto-merge with a refused token",
			calls: []apiCall{getPR, enableStatus(401, ghBadCredentials)},
			do:    autoMerge,
			err:   []string{"401 Unauthorized: Bad credentials"},
		},
	})
}

func TestGitHubChecks(t *testing.T) {
	checks := func(ctx context.Context, f Forge) (any, error) { return f.Checks(ctx, headSHA) }
	status := func(reply string) apiCall {
		return apiCall{method: "GET", path: ghAPI + "/commits/" + headSHA + "/status", query: "per_page=100", reply: reply}
	}
	runs := func(reply string) apiCall {
		return apiCall{method: "GET", path: ghAPI + "/commits/" + headSHA + "/check-runs", query: "filter=latest&per_page=100", reply: reply}
	}
	run := func(name, status, conclusion string) string {
		return `{"id": 1, "name": "` + name + `", "status": "` + status + `", "conclusion": ` + conclusion + `}`
	}
	noStatuses := `{"state": "pending", "statuses": [], "total_count": 0}` // GitHub's answer for a commit without statuses
	noRuns := `{"total_count": 0, "check_runs": []}`

	runForgeCases(t, ghConfig, ghAuth, []forgeCase{
		{
			name:  "the documented examples: a failed status fails",
			calls: []apiCall{status("github/status.json"), runs("github/check-runs.json")},
			do:    checks,
			want: Checks{State: Failure, Lines: []string{
				"continuous-integration/jenkins: success: Build has completed successfully",
				"security/brakeman: failure: Testing has failed",
				"mighty_readme: neutral: Mighty Readme report",
				"test: in_progress",
			}},
		},
		{
			name:  "nothing at all is none, not GitHub's pending",
			calls: []apiCall{status(noStatuses), runs(noRuns)},
			do:    checks, want: Checks{State: None},
		},
		{
			name:  "a run in progress is pending",
			calls: []apiCall{status(noStatuses), runs(`{"total_count": 1, "check_runs": [` + run("build", "queued", "null") + `]}`)},
			do:    checks, want: Checks{State: Pending, Lines: []string{"build: queued"}},
		},
		{
			name: "success and skipped pass",
			calls: []apiCall{
				status(`{"state": "success", "statuses": [{"context": "ci/lint", "state": "success"}], "total_count": 1}`),
				runs(`{"total_count": 2, "check_runs": [` + run("build", "completed", `"success"`) + `,` + run("docs", "completed", `"skipped"`) + `]}`),
			},
			do: checks, want: Checks{State: Success, Lines: []string{"ci/lint: success", "build: success", "docs: skipped"}},
		},
		{
			name: "a timed-out run fails",
			calls: []apiCall{status(noStatuses),
				runs(`{"total_count": 1, "check_runs": [` + run("e2e", "completed", `"timed_out"`) + `]}`)},
			do: checks, want: Checks{State: Failure, Lines: []string{"e2e: timed_out"}},
		},
		{
			name: "check runs over two pages",
			calls: []apiCall{
				status(noStatuses),
				{method: "GET", path: ghAPI + "/commits/" + headSHA + "/check-runs", query: "filter=latest&per_page=100",
					header: map[string]string{"Link": `<https://api.github.com/repositories/1/commits/` + headSHA + `/check-runs?filter=latest&per_page=100&page=2>; rel="next"`},
					reply:  `{"total_count": 2, "check_runs": [` + run("build", "completed", `"success"`) + `]}`},
				{method: "GET", path: ghAPI + "/commits/" + headSHA + "/check-runs", query: "filter=latest&per_page=100&page=2",
					reply: `{"total_count": 2, "check_runs": [` + run("e2e", "in_progress", "null") + `]}`},
			},
			do: checks, want: Checks{State: Pending, Lines: []string{"build: success", "e2e: in_progress"}},
		},
		{
			name: "check runs forbidden to an app without checks=read",
			calls: []apiCall{status(noStatuses), {method: "GET", path: ghAPI + "/commits/" + headSHA + "/check-runs", query: "filter=latest&per_page=100",
				status: 403, reply: `{"message": "Resource not accessible by integration", "status": "403"}`, header: map[string]string{"X-Accepted-GitHub-Permissions": "checks=read"}}},
			do:  checks,
			err: []string{"read the check runs of " + headSHA, "the token needs the permission checks=read"},
		},
	})
}

// TestGitHubConnection: a forge that cannot be reached is retried; the
// step's end is not.
func TestGitHubConnection(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.Listener.Addr().String()
	srv.Close()
	cfg := ghConfig
	cfg.URL = srv.URL
	f, err := newGitHub(cfg, &http.Client{})
	require.NoError(t, err)

	_, err = f.Get(context.Background(), 7)
	require.Error(t, err)
	checkForgeError(t, err, ghToken, addr, true)
	require.ErrorContains(t, err, "the connection to "+addr+" failed")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = f.Get(ctx, 7)
	require.Error(t, err)
	checkForgeError(t, err, ghToken, addr, false)
	require.ErrorIs(t, err, context.Canceled)
}

func TestGitHubURLs(t *testing.T) {
	tests := []struct {
		url, rest, graphql string
	}{
		{"", "https://api.github.com/", "https://api.github.com/graphql"},
		{"https://github.com", "https://api.github.com/", "https://api.github.com/graphql"},
		{"https://ghe.example.com", "https://ghe.example.com/api/v3/", "https://ghe.example.com/api/graphql"},
		{"https://ghe.example.com/api/v3", "https://ghe.example.com/api/v3/", "https://ghe.example.com/api/graphql"},
		{"http://127.0.0.1:8080/github", "http://127.0.0.1:8080/github/api/v3/", "http://127.0.0.1:8080/github/api/graphql"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			cfg := ghConfig
			cfg.URL = tt.url
			f, err := newGitHub(cfg, &http.Client{})
			require.NoError(t, err)
			g := f.(*gitHub)
			require.Equal(t, tt.rest, g.c.BaseURL.String())
			require.Equal(t, tt.graphql, g.graphQLURL())
		})
	}
}

// TestNewGitHubFromURI: New makes the GitHub client of a github.com remote,
// on api.github.com.
func TestNewGitHubFromURI(t *testing.T) {
	f, err := New(Config{RepoURL: "git@github.com:acme/config.git", Token: ghToken}, nil)
	require.NoError(t, err)
	g := f.(*gitHub)
	require.Equal(t, "https://api.github.com/", g.c.BaseURL.String())
	require.Equal(t, []string{"acme", "config"}, []string{g.owner, g.repo})
}

func TestCombineCheckStates(t *testing.T) {
	tests := []struct {
		in   []CheckState
		want CheckState
	}{
		{nil, None},
		{[]CheckState{Success}, Success},
		{[]CheckState{Success, Pending}, Pending},
		{[]CheckState{Pending, Success}, Pending},
		{[]CheckState{Pending, Failure, Success}, Failure},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, combineCheckStates(tt.in), "%v", tt.in)
	}
}
