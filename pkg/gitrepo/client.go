package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"

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
	// checkout: fetches keep their packs (ForCheckout).
	checkout bool
	signer   *Signer
}

// Option configures a Client.
type Option func(*Client)

// WithLog sends progress and warnings to w (default: discarded).
func WithLog(w io.Writer) Option { return func(c *Client) { c.log = w } }

// WithBackoff sets the retry policy for network failures and push races
// (default: DefaultBackoff).
func WithBackoff(b retry.Backoff) Option { return func(c *Client) { c.backoff = b } }

// ForCheckout makes every Snapshot (and FetchCommit) keep the packs it
// fetched, as they came, so that Snapshot.CheckoutRepository can write them
// as a repository's objects (default: objects in memory only). It costs the
// packs' size in memory.
func ForCheckout() Option { return func(c *Client) { c.checkout = true } }

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

// Refs lists the remote's references, like git ls-remote (peeled tags
// left out): the ref advertisement (advertise), as a list.
func (c *Client) Refs(ctx context.Context) ([]*plumbing.Reference, error) {
	ar, err := c.advertise(ctx)
	if err != nil {
		return nil, err
	}
	all, err := ar.AllReferences()
	if err != nil {
		return nil, fmt.Errorf("list refs of %s: %w", c.URL(), err)
	}
	var refs []*plumbing.Reference
	for _, r := range all {
		refs = append(refs, r)
	}
	return refs, nil
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
	return c.SnapshotIfMoved(ctx, branch, depth, plumbing.ZeroHash)
}

// SnapshotIfMoved is Snapshot, unless the branch's tip is still known (not
// zero): then it fetches nothing and returns nil, after one request (the
// ref listing), which a Snapshot makes anyway.
func (c *Client) SnapshotIfMoved(ctx context.Context, branch string, depth int, known plumbing.Hash) (*Snapshot, error) {
	var snap *Snapshot
	err := c.backoff.Do(ctx, c.log, "fetch "+branch+" from "+c.URL(), func() error {
		var err error
		snap, err = c.fetch(ctx, packRequest{branch: branch, depth: depth, unless: known})
		return err
	})
	return snap, err
}

// fetch is one try of SnapshotIfMoved (req.unless: the known tip).
func (c *Client) fetch(ctx context.Context, req packRequest) (*Snapshot, error) {
	repo, ans, err := c.fetchBranch(ctx, c.snapshotStorage(), req)
	if err != nil || ans.unchanged {
		return nil, err
	}
	var head *object.Commit
	if !ans.tip.IsZero() {
		if head, err = repo.CommitObject(ans.tip); err != nil {
			return nil, fmt.Errorf("fetch %s from %s: read commit %s: %w", req.branch, c.URL(), ans.tip, err)
		}
	}
	snap := newSnapshot(repo, req.branch, head)
	snap.refs = ans.refs
	return snap, nil
}

// snapshotStorage is new storage for a Snapshot: objects in memory, and
// the packs as they came too when the client is ForCheckout.
func (c *Client) snapshotStorage() packStorage {
	if c.checkout {
		return newPackKeepingStorage()
	}
	return newStorage()
}

// fetchBranch fetches req.branch at req.depth into st, new storage, as
// origin's remote-tracking branch (nothing when its tip is req.unless). It
// drives upload-pack by hand (uploadPack), so that the ref advertisement it
// read comes back with the branch's tip (the zero hash when the branch does
// not exist): one listing of the remote's refs serves the fetch, its tags
// and the search for an older commit.
func (c *Client) fetchBranch(ctx context.Context, st packStorage, req packRequest) (*git.Repository, packAnswer, error) {
	repo, err := git.Init(st, nil)
	if err != nil {
		return nil, packAnswer{}, err
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{c.ep.raw}}); err != nil {
		return nil, packAnswer{}, err
	}
	ans, err := c.uploadPack(ctx, req, st.parsePack)
	if err != nil || ans.tip.IsZero() || ans.unchanged {
		return repo, ans, err
	}
	if err := st.SetReference(plumbing.NewHashReference(plumbing.NewRemoteReferenceName("origin", req.branch), ans.tip)); err != nil {
		return nil, packAnswer{}, err
	}
	if len(ans.shallows) > 0 {
		if err := st.SetShallow(ans.shallows); err != nil {
			return nil, packAnswer{}, err
		}
	}
	return repo, ans, nil
}

// fetchRef fetches src (a ref, or a commit SHA) at depth into st, new
// storage, as local. Being new, the storage has nothing to negotiate (see
// Snapshot).
func (c *Client) fetchRef(ctx context.Context, st packStorage, src string, local plumbing.ReferenceName, depth int) (*git.Repository, error) {
	repo, err := git.Init(st, nil)
	if err != nil {
		return nil, err
	}
	rem, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{c.ep.raw}})
	if err != nil {
		return nil, err
	}
	err = c.gogit(ctx, func(ctx context.Context) error {
		return rem.FetchContext(ctx, &git.FetchOptions{
			RefSpecs: []config.RefSpec{config.RefSpec(fmt.Sprintf("+%s:%s", src, local))},
			Depth:    depth,
			Auth:     c.auth,
			Tags:     git.NoTags,
		})
	})
	if errors.Is(err, git.NoErrAlreadyUpToDate) {
		err = nil
	}
	return repo, err
}

// DefaultBackoff retries up to 8 times, from 100ms to 3s between tries.
var DefaultBackoff = retry.Backoff{Attempts: 8, Base: 100 * time.Millisecond, Max: 3 * time.Second}

// deepenDepths are the depths FetchCommit fetches a branch at, in turn,
// looking for an older commit: a few steps, each fetched afresh (go-git
// cannot deepen a shallow clone reliably), the last the whole history.
var deepenDepths = []int{64, 512, 0}

// FetchCommit makes the commit named by sha (40 hex digits) available in
// the snapshot's storage, fetching it from the remote when needed. The
// server decides how:
//
//   - a commit at the tip of one of the remote's branches is fetched as
//     that branch, at depth 1;
//   - a server that advertises allow-reachable-sha1-in-want (GitHub,
//     GitLab, git with uploadpack.allowReachableSHA1InWant) is asked for the
//     commit itself, at depth 1: one fetch of what a checkout needs;
//   - otherwise (git's default: a stock http-backend, git daemon, most
//     self-hosted servers) the snapshot's branch is fetched 64, then 512
//     commits deep, then whole, until the commit is there.
//
// A commit the server will not give, or that is not on the branch once its
// whole history is fetched, fails at once (no retries), saying so.
// allow-tip-sha1-in-want alone is not used: it serves only tips, which the
// first way fetches by name.
func (c *Client) FetchCommit(ctx context.Context, snap *Snapshot, sha string) (plumbing.Hash, error) {
	if !plumbing.IsHash(sha) {
		return plumbing.ZeroHash, fmt.Errorf("%q is not a full commit SHA", sha)
	}
	h := plumbing.NewHash(sha)
	if _, err := snap.repo.CommitObject(h); err == nil {
		return h, nil
	}
	ar, err := c.refsOf(ctx, snap)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	target := plumbing.ReferenceName("refs/gitops/target")
	fetchOnce := func(src string) (*Snapshot, error) {
		var got *Snapshot
		err := c.backoff.Do(ctx, c.log, "fetch commit "+sha[:12]+" from "+c.URL(), func() error {
			repo, err := c.fetchRef(ctx, c.snapshotStorage(), src, target, 1)
			if err != nil {
				return c.describe("fetch commit "+sha[:12]+" from", err)
			}
			got = newSnapshot(repo, snap.branch, nil)
			return nil
		})
		return got, err
	}
	var found *Snapshot
	switch branch, ok := branchAt(ar, h); {
	case ok:
		if found, err = fetchOnce(branch.String()); err != nil {
			return plumbing.ZeroHash, err
		}
	case ar.Capabilities.Supports(capability.AllowReachableSHA1InWant):
		found, err = fetchOnce(sha)
		if err != nil && strings.Contains(err.Error(), "not our ref") {
			return plumbing.ZeroHash, fmt.Errorf("commit %s is not on %s: the server has no branch or tag it is reachable from: %w", sha, c.URL(), err)
		}
		if err != nil {
			return plumbing.ZeroHash, err
		}
	default:
		if found, err = c.deepen(ctx, snap.branch, h); err != nil {
			return plumbing.ZeroHash, err
		}
	}
	if _, err := found.repo.CommitObject(h); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("commit %s is not on %s: %w", sha, c.URL(), err)
	}
	if err := snap.adopt(found); err != nil {
		return plumbing.ZeroHash, err
	}
	return h, nil
}

// deepen fetches branch deeper and deeper (deepenDepths) until commit h is
// in what was fetched, and returns that snapshot.
func (c *Client) deepen(ctx context.Context, branch string, h plumbing.Hash) (*Snapshot, error) {
	for _, depth := range deepenDepths {
		deeper, err := c.Snapshot(ctx, branch, depth)
		if err != nil {
			return nil, err
		}
		if deeper.Head == nil {
			return nil, fmt.Errorf("commit %s is not on branch %s of %s: the branch does not exist", h, branch, c.URL())
		}
		if _, err := deeper.repo.CommitObject(h); err == nil {
			return deeper, nil
		}
		if shallow, err := deeper.repo.Storer.Shallow(); err != nil || len(shallow) == 0 || depth == 0 {
			break // the whole history is there
		}
		fmt.Fprintf(c.log, "commit %s is not in the last %d commits of %s: fetching more of its history\n", h.String()[:12], depth, branch)
	}
	return nil, fmt.Errorf("commit %s is not on branch %s of %s: its whole history was fetched and does not hold it (rewritten by a force push?)", h, branch, c.URL())
}

// branchAt finds a branch of the advertisement whose tip is h.
func branchAt(ar *packp.AdvRefs, h plumbing.Hash) (plumbing.ReferenceName, bool) {
	names := make([]string, 0, len(ar.References))
	for name, at := range ar.References {
		if at == h && strings.HasPrefix(name, "refs/heads/") {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return "", false
	}
	sort.Strings(names)
	return plumbing.ReferenceName(names[0]), true
}

// TagsAt lists the remote's tags on the snapshot's commit, lightweight or
// annotated, sorted, as the remote advertised them when the snapshot was
// fetched.
func (c *Client) TagsAt(ctx context.Context, snap *Snapshot) ([]string, error) {
	ar, err := c.refsOf(ctx, snap)
	if err != nil {
		return nil, err
	}
	h := snap.HeadHash()
	var tags []string
	for name, at := range ar.References {
		if peeled, ok := ar.Peeled[name]; ok {
			at = peeled
		}
		if tag, ok := strings.CutPrefix(name, "refs/tags/"); ok && at == h {
			tags = append(tags, tag)
		}
	}
	sort.Strings(tags)
	return tags, nil
}

// refsOf is the ref advertisement the snapshot was fetched with, or a new
// one when it has none.
func (c *Client) refsOf(ctx context.Context, snap *Snapshot) (*packp.AdvRefs, error) {
	if snap.refs != nil {
		return snap.refs, nil
	}
	return c.advertise(ctx)
}

// uploadPackSession opens a fetch session with the remote through go-git's
// transport, as set up by gogit, with the source's credentials; the caller
// closes it.
func (c *Client) uploadPackSession() (transport.UploadPackSession, error) {
	ep, err := transport.NewEndpoint(c.ep.raw)
	if err != nil {
		return nil, err
	}
	cl, err := client.NewClient(ep)
	if err != nil {
		return nil, err
	}
	return cl.NewUploadPackSession(ep, c.auth)
}

// advertise is the remote's ref advertisement for fetching: its refs and
// its capabilities.
func (c *Client) advertise(ctx context.Context) (*packp.AdvRefs, error) {
	var ar *packp.AdvRefs
	err := c.backoff.Do(ctx, c.log, "list refs of "+c.URL(), func() error {
		err := c.gogit(ctx, func(ctx context.Context) error {
			sess, err := c.uploadPackSession()
			if err != nil {
				return err
			}
			defer sess.Close()
			ar, err = sess.AdvertisedReferencesContext(ctx)
			return err
		})
		if errors.Is(err, transport.ErrEmptyRemoteRepository) {
			ar, err = packp.NewAdvRefs(), nil
		}
		return c.describe("list refs of", err)
	})
	return ar, err
}
