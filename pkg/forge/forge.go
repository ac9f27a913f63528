package forge

import (
	"context"
	"errors"
)

// Forge is one repository on a forge (Gitea/Forgejo, GitHub, GitLab), as the
// manifest put's pull_request needs it. Every method names the forge's host
// in its errors and never the token.
type Forge interface {
	// FindOpen returns our open pull request from head into base, or nil
	// when there is none.
	FindOpen(ctx context.Context, head, base string) (*PullRequest, error)
	// Open opens a pull request.
	Open(ctx context.Context, pr NewPullRequest) (*PullRequest, error)
	// Update replaces the title, body and labels of an open pull request.
	Update(ctx context.Context, number int, pr NewPullRequest) (*PullRequest, error)
	// Get returns a pull request as the forge sees it now.
	Get(ctx context.Context, number int) (*PullRequest, error)
	// Merge merges the pull request with method if its head is still
	// headSHA. A transient refusal (Gitea's 405 "try again later" right
	// after another merge, a 5xx) is marked retry.Retryable; every other
	// refusal is final.
	Merge(ctx context.Context, number int, method MergeMethod, headSHA string) error
	// AutoMerge asks the forge to merge the pull request once its checks
	// pass; ErrNoAutoMerge when the forge has no such thing.
	AutoMerge(ctx context.Context, number int, method MergeMethod, headSHA string) error
	// Checks returns the combined state of the statuses and checks on sha.
	Checks(ctx context.Context, sha string) (Checks, error)
}

// MergeMethod is how a pull request is merged.
type MergeMethod string

// The merge methods of put's pull_request.method.
const (
	MergeCommit MergeMethod = "merge"
	Squash      MergeMethod = "squash"
	Rebase      MergeMethod = "rebase"
)

// NewPullRequest is what we write into a pull request.
type NewPullRequest struct {
	Title, Body string
	Head, Base  string // branch names
	Labels      []string
}

// State is a pull request's state.
type State string

// The states of a pull request.
const (
	Open   State = "open"
	Closed State = "closed" // closed without a merge
	Merged State = "merged"
)

// PullRequest is a pull request as the forge reports it.
type PullRequest struct {
	Number      int
	URL         string // the page a person opens
	State       State
	Head, Base  string // branch names
	HeadSHA     string
	MergeCommit string // the merge commit on Base once State is Merged
}

// CheckState is the combined state of a commit's statuses and checks.
type CheckState string

// The combined states.
const (
	Pending CheckState = "pending"
	Success CheckState = "success"
	Failure CheckState = "failure"
	None    CheckState = "none" // no status or check at all
)

// Checks is the combined state and each status or check, one line each
// ("ci/test: failure: 2 tests failed").
type Checks struct {
	State CheckState
	Lines []string
}

// ErrNoAutoMerge is AutoMerge's error on a forge without auto-merge.
var ErrNoAutoMerge = errors.New("the forge has no auto-merge")
