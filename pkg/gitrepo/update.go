package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/gitops-resource/gitops-resource/pkg/retry"
)

// EditFunc stages a change on a fresh snapshot: files written and committed
// with Snapshot.Commit, and/or tags made with Snapshot.Tag. It is called
// again on a newer tip after a lost push race, so it must derive its change
// from the snapshot (re-apply the bump, not the old number). Making no commit
// and no tag means there is nothing to push.
type EditFunc func(s *Snapshot) error

// Result says what Update did.
type Result struct {
	// Commit is the new commit, or the tip when nothing changed.
	Commit plumbing.Hash
	// Previous is the tip the change was made on (zero for a new branch).
	Previous plumbing.Hash
	// Pushed is false when the edit made no change.
	Pushed bool
	// Tags are the tags pushed, by name.
	Tags map[string]plumbing.Hash
	// Attempts counts the snapshots the edit was applied to.
	Attempts int
	// Snapshot is the one the winning edit was applied to.
	Snapshot *Snapshot
	// SignedWith is the fingerprint of the key that signed what was pushed
	// (WithSigner), or "".
	SignedWith string
}

// errConflict means someone else updated the ref first.
var errConflict = errors.New("the remote changed first")

// Update applies edit to a snapshot of branch (depth commits deep, 0 for all
// history) and pushes the result,
// never forcing. When another writer pushed first, it takes a new snapshot,
// applies edit again and retries, with jittered backoff, up to the client's
// attempt limit. After a push it reads the remote and fails unless the
// branch (and each tag) points at what was pushed. With WithSigner, every
// commit and tag made, on each attempt, is signed.
func (c *Client) Update(ctx context.Context, branch string, depth int, edit EditFunc) (Result, error) {
	res := Result{}
	if c.signer != nil {
		fmt.Fprintf(c.log, "signing commits and tags with %s\n", c.signer)
	}
	err := c.backoff.Do(ctx, c.log, "update "+branch+" on "+c.URL(), func() error {
		res.Attempts++
		snap, err := c.fetch(ctx, packRequest{branch: branch, depth: depth})
		if err != nil {
			return err
		}
		snap.signer = c.signer
		if err := edit(snap); err != nil {
			return retry.Permanent(err)
		}
		res.Previous, res.Snapshot = snap.HeadHash(), snap
		if snap.commit == nil && len(snap.newTags) == 0 {
			res.Commit = snap.HeadHash()
			return nil
		}
		if err := c.push(ctx, snap); err != nil {
			return err
		}
		res.Pushed, res.Tags = true, snap.newTags
		if c.signer != nil {
			res.SignedWith = c.signer.Fingerprint()
		}
		res.Commit = snap.HeadHash()
		if snap.commit != nil {
			res.Commit = snap.commit.Hash
		}
		return c.verify(ctx, snap)
	})
	if err != nil {
		return res, err
	}
	return res, nil
}

func (c *Client) push(ctx context.Context, snap *Snapshot) error {
	var specs []config.RefSpec
	var require []config.RefSpec
	branchRef := plumbing.NewBranchReferenceName(snap.branch)
	if snap.commit != nil {
		if err := snap.repo.Storer.SetReference(plumbing.NewHashReference(branchRef, snap.commit.Hash)); err != nil {
			return retry.Permanent(err)
		}
		specs = append(specs, config.RefSpec(branchRef+":"+branchRef))
		// Compare and swap: the remote branch must still be where it was
		// fetched. The server also refuses non-fast-forward updates; this
		// check just says so before sending a pack.
		if snap.Head != nil && !snap.created {
			require = append(require, config.RefSpec(snap.Head.Hash.String()+":"+branchRef.String()))
		}
	}
	for name, h := range snap.newTags {
		ref := plumbing.NewTagReferenceName(name)
		if err := snap.repo.Storer.SetReference(plumbing.NewHashReference(ref, h)); err != nil {
			return retry.Permanent(err)
		}
		specs = append(specs, config.RefSpec(ref+":"+ref))
	}
	var said serverWords
	err := c.gogit(ctx, func(ctx context.Context) error {
		return snap.repo.PushContext(ctx, &git.PushOptions{
			RemoteName:        "origin",
			RefSpecs:          specs,
			Auth:              c.auth,
			RequireRemoteRefs: require,
			Atomic:            len(specs) > 1,
			Progress:          &said,
		})
	})
	if err == nil {
		return nil
	}
	// Only new objects are pushed, so "already up to date" means another
	// writer made the very same commit or tag (same tip, same second): that
	// write was theirs, not ours.
	if errors.Is(err, git.NoErrAlreadyUpToDate) || isConflict(err) || c.remoteMoved(ctx, snap) {
		fmt.Fprintf(c.log, "push to %s: another writer updated %s first; re-applying the change on the new state\n", c.URL(), snap.branch)
		return retry.Retryable(fmt.Errorf("push %s to %s: %w", snap.branch, c.URL(), errConflict))
	}
	return c.describe("push "+snap.branch+" to", said.explain(err))
}

// remoteMoved reports whether, after a failed push, the remote branch is no
// longer the fetched tip or one of the tags now exists: a lost race, whatever
// the error said.
func (c *Client) remoteMoved(ctx context.Context, snap *Snapshot) bool {
	rem := git.NewRemote(nil, &config.RemoteConfig{Name: "origin", URLs: []string{c.ep.raw}})
	var refs []*plumbing.Reference
	err := c.gogit(ctx, func(ctx context.Context) (err error) {
		refs, err = rem.ListContext(ctx, &git.ListOptions{Auth: c.auth})
		return err
	})
	if err != nil {
		return false
	}
	for _, r := range refs {
		if r.Name() == plumbing.NewBranchReferenceName(snap.branch) && snap.commit != nil && r.Hash() != snap.HeadHash() {
			return true
		}
		if r.Name().IsTag() {
			if _, mine := snap.newTags[strings.TrimPrefix(r.Name().String(), "refs/tags/")]; mine {
				return true
			}
		}
	}
	return false
}

// isConflict recognises the ways a server or go-git says another writer
// won: a non-fast-forward update, or a tag that already exists.
func isConflict(err error) bool {
	if errors.Is(err, git.ErrNonFastForwardUpdate) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"non-fast-forward", "fetch first", "already exists", "stale info", "cannot lock ref", "failed to update ref", "reference has changed", "required to be"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// verify reads the remote after a push: the branch must point at the new
// commit (or at a descendant of it, if someone pushed on top in between), and
// each new tag at its tag object.
func (c *Client) verify(ctx context.Context, snap *Snapshot) error {
	refs, err := c.Refs(ctx)
	if err != nil {
		return retry.Permanent(fmt.Errorf("verify the push: %w", err))
	}
	have := map[plumbing.ReferenceName]plumbing.Hash{}
	for _, r := range refs {
		have[r.Name()] = r.Hash()
	}
	for name, h := range snap.newTags {
		if got := have[plumbing.NewTagReferenceName(name)]; got != h {
			return retry.Permanent(fmt.Errorf("verify the push: tag %s on %s is %s, not the tag just pushed (%s)", name, c.URL(), got, h))
		}
	}
	if snap.commit == nil {
		return nil
	}
	got := have[plumbing.NewBranchReferenceName(snap.branch)]
	if got == snap.commit.Hash {
		return nil
	}
	later, err := c.fetch(ctx, packRequest{branch: snap.branch, depth: 50})
	if err != nil {
		return retry.Permanent(fmt.Errorf("verify the push: %w", err))
	}
	found := false
	err = later.Log(func(cm *object.Commit) error {
		if found = cm.Hash == snap.commit.Hash; found {
			return ErrStop
		}
		return nil
	})
	if err != nil || !found {
		return retry.Permanent(fmt.Errorf("verify the push: %s on %s is %s and does not contain the pushed commit %s: the write was lost", snap.branch, c.URL(), got, snap.commit.Hash))
	}
	return nil
}
