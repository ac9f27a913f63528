package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/gitops-resource/gitops-resource/pkg/retry"
)

// Client talks to one remote repository.
type Client struct {
	ep       endpoint
	auth     transport.AuthMethod
	insecure bool
	log      io.Writer
	backoff  retry.Backoff
	cleanup  func()
}

// Option configures a Client.
type Option func(*Client)

// WithLog sends progress and warnings to w (default: discarded).
func WithLog(w io.Writer) Option { return func(c *Client) { c.log = w } }

// WithBackoff sets the retry policy for network failures and push races
// (default: DefaultBackoff).
func WithBackoff(b retry.Backoff) Option { return func(c *Client) { c.backoff = b } }

// New prepares a client for the remote at rawURL. Close releases what it
// wrote to disk.
func New(rawURL string, auth Auth, opts ...Option) (*Client, error) {
	ep, err := parseEndpoint(rawURL)
	if err != nil {
		return nil, err
	}
	installBoundedHTTP()
	c := &Client{ep: ep, insecure: auth.SkipTLSVerify, log: io.Discard, backoff: DefaultBackoff}
	for _, o := range opts {
		o(c)
	}
	c.auth, c.cleanup, err = auth.authMethod(ep, c.log)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Close removes temporary files (known_hosts) the client wrote.
func (c *Client) Close() {
	if c.cleanup != nil {
		c.cleanup()
	}
}

// gogit runs fn, a go-git call that talks to the remote, with the client's
// TLS options in its context. It returns as soon as ctx ends (untilDone).
func (c *Client) gogit(ctx context.Context, fn func(ctx context.Context) error) error {
	return untilDone(ctx, func() error { return fn(c.withTLSOptions(ctx)) })
}

// URL is the remote's URL without credentials.
func (c *Client) URL() string { return c.ep.String() }

// Refs lists the remote's references, like git ls-remote.
func (c *Client) Refs(ctx context.Context) ([]*plumbing.Reference, error) {
	var refs []*plumbing.Reference
	err := c.backoff.Do(ctx, c.log, "list refs of "+c.URL(), func() error {
		rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{c.ep.raw}})
		err := c.gogit(ctx, func(ctx context.Context) (err error) {
			refs, err = rem.ListContext(ctx, &git.ListOptions{Auth: c.auth})
			return err
		})
		if errors.Is(err, transport.ErrEmptyRemoteRepository) {
			refs, err = nil, nil
		}
		return c.describe("list refs of", err)
	})
	return refs, err
}

// Tip returns the commit the remote branch points at, or the zero hash when
// the branch does not exist.
func (c *Client) Tip(ctx context.Context, branch string) (plumbing.Hash, error) {
	refs, err := c.Refs(ctx)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	name := plumbing.NewBranchReferenceName(branch)
	for _, r := range refs {
		if r.Name() == name {
			return r.Hash(), nil
		}
	}
	return plumbing.ZeroHash, nil
}

// Snapshot fetches the tip of branch with the given history depth (0 means
// all history) into memory. A branch that does not exist yet gives an empty
// snapshot whose Head is nil, so the first commit can create it.
//
// Two go-git gaps are avoided by construction: it cannot deepen or update a
// shallow clone reliably, and it does not implement the multi_ack
// negotiation some servers need when the client already has objects. Every
// call therefore fetches afresh into new, empty storage (no "have" lines to
// negotiate), and callers that retry take a new snapshot.
//
// The pack is checked against MaxPackObjects, MaxPackMemory and
// MaxPackBytes as it arrives, and the fetch returns when ctx ends, whatever
// the server or the parser is doing.
func (c *Client) Snapshot(ctx context.Context, branch string, depth int) (*Snapshot, error) {
	var snap *Snapshot
	err := c.backoff.Do(ctx, c.log, "fetch "+branch+" from "+c.URL(), func() error {
		var err error
		snap, err = c.fetch(ctx, branch, depth)
		return err
	})
	return snap, err
}

func (c *Client) fetch(ctx context.Context, branch string, depth int) (*Snapshot, error) {
	repo, err := git.Init(newStorage(), nil)
	if err != nil {
		return nil, err
	}
	rem, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{c.ep.raw}})
	if err != nil {
		return nil, err
	}
	local := plumbing.NewRemoteReferenceName("origin", branch)
	spec := config.RefSpec(fmt.Sprintf("+%s:%s", plumbing.NewBranchReferenceName(branch), local))
	err = c.gogit(ctx, func(ctx context.Context) error {
		return rem.FetchContext(ctx, &git.FetchOptions{
			RefSpecs: []config.RefSpec{spec},
			Depth:    depth,
			Auth:     c.auth,
			Tags:     git.NoTags,
		})
	})
	var noMatch git.NoMatchingRefSpecError
	switch {
	case errors.As(err, &noMatch), errors.Is(err, transport.ErrEmptyRemoteRepository):
		return newSnapshot(repo, branch, nil), nil
	case err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate):
		return nil, c.describe("fetch "+branch+" from", err)
	}
	ref, err := repo.Reference(local, true)
	if err != nil {
		return nil, fmt.Errorf("fetch %s from %s: %w", branch, c.URL(), err)
	}
	head, err := repo.CommitObject(ref.Hash())
	if err != nil {
		return nil, fmt.Errorf("fetch %s from %s: read commit %s: %w", branch, c.URL(), ref.Hash(), err)
	}
	return newSnapshot(repo, branch, head), nil
}

// DefaultBackoff retries up to 8 times, from 100ms to 3s between tries.
var DefaultBackoff = retry.Backoff{Attempts: 8, Base: 100 * time.Millisecond, Max: 3 * time.Second}

// FetchCommit makes the commit named by sha (40 hex digits) available in
// the snapshot's storage, fetching it from the remote when needed.
func (c *Client) FetchCommit(ctx context.Context, snap *Snapshot, sha string) (plumbing.Hash, error) {
	if !plumbing.IsHash(sha) {
		return plumbing.ZeroHash, fmt.Errorf("%q is not a full commit SHA", sha)
	}
	h := plumbing.NewHash(sha)
	if _, err := snap.repo.CommitObject(h); err == nil {
		return h, nil
	}
	err := c.backoff.Do(ctx, c.log, "fetch commit "+sha[:12]+" from "+c.URL(), func() error {
		err := c.gogit(ctx, func(ctx context.Context) error {
			return snap.repo.FetchContext(ctx, &git.FetchOptions{
				RemoteName: "origin",
				RefSpecs:   []config.RefSpec{config.RefSpec(sha + ":refs/gitops/target")},
				Depth:      1,
				Auth:       c.auth,
				Tags:       git.NoTags,
			})
		})
		if errors.Is(err, git.NoErrAlreadyUpToDate) {
			err = nil
		}
		return c.describe("fetch commit "+sha[:12]+" from", err)
	})
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := snap.repo.CommitObject(h); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("commit %s is not on %s: %w", sha, c.URL(), err)
	}
	return h, nil
}
