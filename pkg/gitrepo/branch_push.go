package gitrepo

import (
	"context"
	"errors"
	"fmt"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitops-resource/gitops-resource/pkg/retry"
)

// BranchResult says what UpdateBranchFrom did.
type BranchResult struct {
	// Commit is the head of branch after the call: the commit made (or the
	// one branch already held with the same change), or base's tip when
	// the edit changed nothing.
	Commit plumbing.Hash
	// Base is the tip of base the change was made on.
	Base plumbing.Hash
	// Changed is false when the edit made no commit: base holds the change
	// already, and nothing was pushed.
	Changed bool
	// Pushed is true when branch was written; false when it held a commit
	// with the same tree on the same parent already (Kept), or when nothing
	// changed.
	Pushed bool
	// Kept: branch already held the same change on the same base tip, so
	// its commit was kept as it is (its checks stay as they are).
	Kept bool
	// Message is the message of Commit when Changed.
	Message string
	// Attempts counts the snapshots the edit was applied to.
	Attempts int
	// SignedWith is the fingerprint of the key that signed the commit
	// pushed, or "".
	SignedWith string
}

// UpdateBranchFrom applies edit to a snapshot of base's tip (depth commits
// deep) and makes branch point at the commit it makes, replacing whatever
// branch held: a branch the caller owns, such as a pull request's head,
// rebuilt on base's tip each time. base itself is never pushed.
//
// The push is a force push with a lease: it is refused when branch moved
// since it was read, and then the whole edit is applied again on a fresh
// snapshot of base. When branch already holds a commit with the same tree
// whose only parent is base's tip, nothing is pushed and that commit is the
// result (Kept), so a rerun does not restart the checks of an unchanged pull
// request. Tags are not pushed. After a push it reads the remote and
// retries unless branch points at what was pushed.
func (c *Client) UpdateBranchFrom(ctx context.Context, base, branch string, depth int, edit EditFunc) (BranchResult, error) {
	if base == branch {
		return BranchResult{}, fmt.Errorf("update %s from itself: the branch and its base must differ", branch)
	}
	res := BranchResult{}
	if c.signer != nil {
		fmt.Fprintf(c.log, "signing commits with %s\n", c.signer)
	}
	err := c.backoff.Do(ctx, c.log, "update "+branch+" from "+base+" on "+c.URL(), func() error {
		res.Attempts++
		res.Changed, res.Pushed, res.Kept, res.Message, res.SignedWith = false, false, false, "", ""
		snap, err := c.fetch(ctx, packRequest{branch: base, depth: depth})
		if err != nil {
			return err
		}
		snap.signer = c.signer
		if err := edit(snap); err != nil {
			return retry.Permanent(err)
		}
		if len(snap.newTags) > 0 {
			return retry.Permanent(errors.New("gitrepo: UpdateBranchFrom does not push tags"))
		}
		res.Base = snap.HeadHash()
		if snap.commit == nil {
			res.Commit = snap.HeadHash()
			return nil
		}
		res.Changed = true
		ref := plumbing.NewBranchReferenceName(branch)
		old, err := c.Tip(ctx, branch)
		if err != nil {
			return err
		}
		if !old.IsZero() {
			kept, msg, err := c.sameChange(ctx, branch, old, snap)
			if err != nil {
				return err
			}
			if kept {
				res.Commit, res.Kept, res.Message = old, true, msg
				return nil
			}
		}
		if err := snap.repo.Storer.SetReference(plumbing.NewHashReference(ref, snap.commit.Hash)); err != nil {
			return retry.Permanent(err)
		}
		opts := &git.PushOptions{
			RemoteName: "origin",
			RefSpecs:   []config.RefSpec{config.RefSpec("+" + ref + ":" + ref)},
			Auth:       c.auth,
			Force:      true,
		}
		if !old.IsZero() {
			// The lease: branch must still be what was read.
			opts.RequireRemoteRefs = []config.RefSpec{config.RefSpec(old.String() + ":" + ref.String())}
		}
		var said serverWords
		opts.Progress = &said
		err = c.gogit(ctx, func(ctx context.Context) error { return snap.repo.PushContext(ctx, opts) })
		switch {
		case err == nil, errors.Is(err, git.NoErrAlreadyUpToDate):
		case isConflict(err):
			fmt.Fprintf(c.log, "push to %s: %s changed while it was replaced; applying the change again\n", c.URL(), branch)
			return retry.Retryable(fmt.Errorf("push %s to %s: %w", branch, c.URL(), errConflict))
		default:
			return c.describe("push "+branch+" to", said.explain(err))
		}
		res.Commit, res.Pushed, res.Message = snap.commit.Hash, true, snap.commit.Message
		if c.signer != nil {
			res.SignedWith = c.signer.Fingerprint()
		}
		got, err := c.Tip(ctx, branch)
		if err != nil {
			return retry.Permanent(fmt.Errorf("verify the push: %w", err))
		}
		if got != snap.commit.Hash {
			fmt.Fprintf(c.log, "push to %s: %s is %s, not the commit just pushed: another writer replaced it; applying the change again\n", c.URL(), branch, got)
			return retry.Retryable(fmt.Errorf("push %s to %s: %w", branch, c.URL(), errConflict))
		}
		return nil
	})
	return res, err
}

// sameChange reports whether old, branch's tip, has the tree of the
// snapshot's new commit and base's tip as its only parent, and gives its
// message.
func (c *Client) sameChange(ctx context.Context, branch string, old plumbing.Hash, snap *Snapshot) (bool, string, error) {
	repo, ans, err := c.fetchBranch(ctx, newStorage(), packRequest{branch: branch, depth: 1})
	if err != nil {
		return false, "", err
	}
	tip := ans.tip
	if tip != old {
		return false, "", nil // moved since: the push's lease decides
	}
	cm, err := repo.CommitObject(old)
	if err != nil {
		return false, "", fmt.Errorf("fetch %s from %s: read commit %s: %w", branch, c.URL(), old, err)
	}
	same := cm.TreeHash == snap.commit.TreeHash && len(cm.ParentHashes) == 1 && cm.ParentHashes[0] == snap.HeadHash()
	return same, cm.Message, nil
}
