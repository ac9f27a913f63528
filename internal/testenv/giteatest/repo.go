package giteatest

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"

	"github.com/gitops-resource/gitops-resource/internal/proc"
)

// Client is an SDK client of s acting as the admin, for t.
func (s *Server) Client(t testing.TB) *gitea.Client {
	t.Helper()
	return s.ClientAs(t, s.Token)
}

// ClientAs is an SDK client of s authenticated by token, for t.
func (s *Server) ClientAs(t testing.TB, token string) *gitea.Client {
	t.Helper()
	c, err := gitea.NewClient(s.URL, gitea.SetToken(token), gitea.SetContext(t.Context()))
	if err != nil {
		t.Fatalf("giteatest: client of %s: %v", s.URL, err)
	}
	return c
}

// Repo is a repository of the admin user on a Server.
type Repo struct {
	Owner, Name string
	// CloneURL is its git URL, without credentials.
	CloneURL string
	// Branch is its default branch, main.
	Branch string

	s *Server
}

var names atomic.Int64

// uniqueName is prefix and a number unique in this test process, made of
// t's name so a server's repositories say which test made them.
func uniqueName(t testing.TB, prefix string) string {
	n := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, strings.ToLower(t.Name()))
	if len(n) > 30 { // Gitea's user names have at most 40 characters
		n = n[len(n)-30:]
	}
	return fmt.Sprintf("%s%s-%d", prefix, strings.Trim(n, "-"), names.Add(1))
}

// CreateRepo creates a repository of the admin, named after t, whose main
// branch holds files (path → content) in one commit pushed with git.
func (s *Server) CreateRepo(t testing.TB, files map[string]string) *Repo {
	t.Helper()
	name := uniqueName(t, "")
	if _, _, err := s.Client(t).CreateRepo(gitea.CreateRepoOption{Name: name, DefaultBranch: "main"}); err != nil {
		t.Fatalf("giteatest: create repository %s: %v", name, err)
	}
	r := &Repo{Owner: s.Admin, Name: name, CloneURL: s.URL + "/" + s.Admin + "/" + name + ".git", Branch: "main", s: s}
	if len(files) == 0 {
		return r
	}
	work := t.TempDir()
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		full := filepath.Join(work, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatalf("giteatest: %v", err)
		}
		if err := os.WriteFile(full, []byte(files[p]), 0o644); err != nil {
			t.Fatalf("giteatest: %v", err)
		}
	}
	git(t, work, "init", "-q", "-b", "main")
	git(t, work, "add", "-A")
	git(t, work, "commit", "-q", "-m", "initial files")
	git(t, work, "push", "-q", r.AuthURL(s.Admin, s.Token), "main")
	// Gitea takes a push in after answering it (its push queue): until
	// then the repository counts as empty.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c := s.Client(t)
	if err := proc.Poll(ctx, "gitea to take in the push to "+r.FullName(), s.process, func(context.Context) error {
		repo, _, err := c.GetRepo(r.Owner, r.Name)
		switch {
		case err != nil:
			return err
		case repo.Empty:
			return errors.New("still empty")
		}
		return nil
	}); err != nil {
		t.Fatalf("giteatest: %v", err)
	}
	return r
}

// AuthURL is the repository's git URL with user and password (or token).
func (r *Repo) AuthURL(user, password string) string {
	u, _ := url.Parse(r.CloneURL)
	u.User = url.UserPassword(user, password)
	return u.String()
}

// FullName is owner/name.
func (r *Repo) FullName() string { return r.Owner + "/" + r.Name }

// git runs git in dir for t, with a config of its own.
func git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=giteatest", "GIT_AUTHOR_EMAIL=giteatest@example.com",
		"GIT_COMMITTER_NAME=giteatest", "GIT_COMMITTER_EMAIL=giteatest@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		// The push URL holds the admin's token: never print the arguments.
		t.Fatalf("giteatest: git %s in %s: %v: %s", args[0], dir, err, out)
	}
	return strings.TrimSpace(string(out))
}

// User is a Gitea user with a token.
type User struct {
	Name, Password string
	// Token has the scopes it was created with.
	Token string
}

// CreateUser creates a user named after t, with a token of scopes
// (default: all); what it may do is then only what its rights allow.
func (s *Server) CreateUser(t testing.TB, scopes ...string) User {
	t.Helper()
	u := User{Name: uniqueName(t, "u-"), Password: "pw-" + randomHex(12)}
	no := false
	if _, _, err := s.Client(t).AdminCreateUser(gitea.CreateUserOption{
		Username: u.Name, Email: u.Name + "@example.com", Password: u.Password, MustChangePassword: &no,
	}); err != nil {
		t.Fatalf("giteatest: create user %s: %v", u.Name, err)
	}
	if len(scopes) == 0 {
		scopes = []string{"all"}
	}
	sc := make([]gitea.AccessTokenScope, len(scopes))
	for i, s := range scopes {
		sc[i] = gitea.AccessTokenScope(s)
	}
	c, err := gitea.NewClient(s.URL, gitea.SetBasicAuth(u.Name, u.Password), gitea.SetContext(t.Context()))
	if err != nil {
		t.Fatalf("giteatest: %v", err)
	}
	tok, _, err := c.CreateAccessToken(gitea.CreateAccessTokenOption{Name: "giteatest", Scopes: sc})
	if err != nil {
		t.Fatalf("giteatest: create a token of %s: %v", u.Name, err)
	}
	u.Token = tok.Token
	return u
}

func encode(content string) string { return base64.StdEncoding.EncodeToString([]byte(content)) }

// AddCollaborator gives user access to r: "read", "write" or "admin".
func (r *Repo) AddCollaborator(t testing.TB, user, access string) {
	t.Helper()
	mode := gitea.AccessMode(access)
	if _, err := r.s.Client(t).AddCollaborator(r.Owner, r.Name, user, gitea.AddCollaboratorOption{Permission: &mode}); err != nil {
		t.Fatalf("giteatest: add %s to %s with %s access: %v", user, r.FullName(), access, err)
	}
}

// ReadOnlyUser creates a user who may read r and nothing more (a read
// collaborator, its token of every scope): what it is refused, it is refused
// for lack of rights.
func (r *Repo) ReadOnlyUser(t testing.TB) User {
	t.Helper()
	u := r.s.CreateUser(t)
	r.AddCollaborator(t, u.Name, "read")
	return u
}

// SetStatus sets the commit status context of sha to state ("pending",
// "success", "failure", "error", "warning").
func (r *Repo) SetStatus(t testing.TB, sha, context, state, description string) {
	t.Helper()
	if _, _, err := r.s.Client(t).CreateStatus(r.Owner, r.Name, sha, gitea.CreateStatusOption{
		State: gitea.StatusState(state), Context: context, Description: description,
	}); err != nil {
		t.Fatalf("giteatest: set status %s of %s in %s to %s: %v", context, sha, r.FullName(), state, err)
	}
}

// Protect protects branch: no direct pushes, and when contexts are given,
// merges only once those statuses succeed.
func (r *Repo) Protect(t testing.TB, branch string, contexts ...string) {
	t.Helper()
	if _, _, err := r.s.Client(t).CreateBranchProtection(r.Owner, r.Name, gitea.CreateBranchProtectionOption{
		RuleName: branch, BranchName: branch, EnableStatusCheck: len(contexts) > 0, StatusCheckContexts: contexts,
	}); err != nil {
		t.Fatalf("giteatest: protect %s of %s: %v", branch, r.FullName(), err)
	}
}

// PullRequest returns pull request number as Gitea reports it now.
func (r *Repo) PullRequest(t testing.TB, number int) *gitea.PullRequest {
	t.Helper()
	pr, _, err := r.s.Client(t).GetPullRequest(r.Owner, r.Name, int64(number))
	if err != nil {
		t.Fatalf("giteatest: get pull request #%d of %s: %v", number, r.FullName(), err)
	}
	return pr
}

// MergeByHand merges pull request number as the admin would in the web UI,
// with a merge commit, and returns the merge commit. Gitea refuses a merge
// while it still checks the pull request ("try again later"): that is
// retried for up to a minute.
func (r *Repo) MergeByHand(t testing.TB, number int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c := r.s.Client(t)
	err := proc.Poll(ctx, fmt.Sprintf("merge of pull request #%d of %s", number, r.FullName()), nil, func(context.Context) error {
		ok, resp, err := c.MergePullRequest(r.Owner, r.Name, int64(number), gitea.MergePullRequestOption{Style: gitea.MergeStyleMerge})
		switch {
		case err != nil:
			return err
		case !ok:
			return fmt.Errorf("merge refused: %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("giteatest: %v", err)
	}
	pr := r.PullRequest(t, number)
	if !pr.HasMerged || pr.MergedCommitID == nil {
		t.Fatalf("giteatest: pull request #%d of %s is not merged after its merge", number, r.FullName())
	}
	return *pr.MergedCommitID
}

// Close closes pull request number without merging it.
func (r *Repo) Close(t testing.TB, number int) {
	t.Helper()
	closed := gitea.StateClosed
	if _, _, err := r.s.Client(t).EditPullRequest(r.Owner, r.Name, int64(number), gitea.EditPullRequestOption{State: &closed}); err != nil {
		t.Fatalf("giteatest: close pull request #%d of %s: %v", number, r.FullName(), err)
	}
}

// ReadFile returns the content of path at branch (or any ref).
func (r *Repo) ReadFile(t testing.TB, ref, path string) string {
	t.Helper()
	data, _, err := r.s.Client(t).GetFile(r.Owner, r.Name, ref, path)
	if err != nil {
		t.Fatalf("giteatest: read %s at %s of %s: %v", path, ref, r.FullName(), err)
	}
	return string(data)
}

// Tip returns the commit branch points at, or "" when there is no such
// branch.
func (r *Repo) Tip(t testing.TB, branch string) string {
	t.Helper()
	b, resp, err := r.s.Client(t).GetRepoBranch(r.Owner, r.Name, branch)
	if resp != nil && resp.StatusCode == 404 {
		return ""
	}
	if err != nil {
		t.Fatalf("giteatest: get branch %s of %s: %v", branch, r.FullName(), err)
	}
	if b.Commit == nil {
		t.Fatalf("giteatest: branch %s of %s has no commit", branch, r.FullName())
	}
	return b.Commit.ID
}

// PutFile commits content to path on branch through the API (as someone
// else changing the repository), creating branch from the default branch
// when it does not exist; it returns the new commit.
func (r *Repo) PutFile(t testing.TB, branch, path, content string) string {
	t.Helper()
	c := r.s.Client(t)
	opts := gitea.FileOptions{Message: "edit " + path, BranchName: branch}
	if r.Tip(t, branch) == "" {
		opts.BranchName, opts.NewBranchName = r.Branch, branch
	}
	enc := encode(content)
	existing, resp, err := c.GetContents(r.Owner, r.Name, opts.BranchName, path)
	var fr *gitea.FileResponse
	switch {
	case err == nil && existing != nil:
		fr, _, err = c.UpdateFile(r.Owner, r.Name, path, gitea.UpdateFileOptions{FileOptions: opts, SHA: existing.SHA, Content: enc})
	case resp != nil && resp.StatusCode == 404:
		fr, _, err = c.CreateFile(r.Owner, r.Name, path, gitea.CreateFileOptions{FileOptions: opts, Content: enc})
	}
	if err == nil && (fr == nil || fr.Commit == nil) {
		err = errors.New("no commit in the answer")
	}
	if err != nil {
		t.Fatalf("giteatest: put %s on %s of %s: %v", path, branch, r.FullName(), err)
	}
	return fr.Commit.SHA
}
