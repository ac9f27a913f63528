package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// packRequest is what uploadPack asks a server for: the tip of branch
// (as the server advertises it), depth commits deep (0: all), when the
// client already has haves, its history cut at shallows; nothing when the
// tip is unless.
type packRequest struct {
	branch   string
	depth    int
	haves    []plumbing.Hash
	shallows []plumbing.Hash
	unless   plumbing.Hash
}

// packAnswer is what the server said besides the pack.
type packAnswer struct {
	// tip is the branch's commit as advertised, zero when the branch does
	// not exist (and no pack was asked for).
	tip plumbing.Hash
	// shallows are the commits sent whose parents were not; unshallows the
	// client's shallows whose parents were sent.
	shallows, unshallows []plumbing.Hash
	// refs is the ref advertisement read (nil for an empty repository).
	refs *packp.AdvRefs
	// unchanged: the tip is the request's unless, and nothing was fetched.
	unchanged bool
}

// uploadPack drives git's upload-pack by hand (go-git's Fetch can only
// fetch into empty storage, see Snapshot): it reads the advertisement,
// asks for req, and hands the pack, checked as every fetch's is
// (newCheckedPackWriter), to parse. The pack is self-contained: thin packs
// are not asked for, so every delta's base is in it. (A deepening then
// brings the trees of the commits it unshallows again, which a thin pack
// would not; but resolving a thin pack's deltas against the packs before
// cost more than reading those trees.)
// Without haves, a branch the server does not have gives a zero tip and no
// pack; so does a tip that is req.unless (its hash, no pack).
func (c *Client) uploadPack(ctx context.Context, req packRequest, parse func(r io.Reader) error) (packAnswer, error) {
	var ans packAnswer
	err := c.gogit(ctx, func(ctx context.Context) error {
		sess, err := c.uploadPackSession()
		if err != nil {
			return err
		}
		defer sess.Close()
		ar, err := sess.AdvertisedReferencesContext(ctx)
		if errors.Is(err, transport.ErrEmptyRemoteRepository) {
			return nil
		}
		if err != nil {
			return err
		}
		ans.refs = ar
		tip, ok := ar.References[plumbing.NewBranchReferenceName(req.branch).String()]
		if !ok {
			return nil
		}
		ans.tip = tip
		if ans.unchanged = tip == req.unless; ans.unchanged {
			return nil
		}
		up := packp.NewUploadPackRequest()
		caps := ar.Capabilities
		for _, cp := range []capability.Capability{capability.OFSDelta, capability.Sideband64k} {
			if caps.Supports(cp) {
				_ = up.Capabilities.Set(cp)
			}
		}
		if !caps.Supports(capability.Sideband64k) && caps.Supports(capability.Sideband) {
			_ = up.Capabilities.Set(capability.Sideband)
		}
		if caps.Supports(capability.NoProgress) {
			_ = up.Capabilities.Set(capability.NoProgress)
		}
		if caps.Supports(capability.Agent) {
			_ = up.Capabilities.Set(capability.Agent, capability.DefaultAgent())
		}
		up.Wants = []plumbing.Hash{tip}
		up.Haves = req.haves
		up.Shallows = req.shallows
		if req.depth > 0 {
			up.Depth = packp.DepthCommits(req.depth)
			if err := up.Capabilities.Set(capability.Shallow); err != nil {
				return err
			}
		}
		resp, err := sess.UploadPack(ctx, up)
		if err != nil {
			return err
		}
		defer resp.Close()
		ans.shallows, ans.unshallows = resp.Shallows, resp.Unshallows
		var r io.Reader = resp
		switch {
		case up.Capabilities.Supports(capability.Sideband64k):
			r = sideband.NewDemuxer(sideband.Sideband64k, resp)
		case up.Capabilities.Supports(capability.Sideband):
			r = sideband.NewDemuxer(sideband.Sideband, resp)
		}
		w := newCheckedPackWriter(packLimits{MaxPackObjects, MaxPackMemory, MaxPackBytes}, parse)
		_, err = io.Copy(w, r)
		if cerr := w.Close(); err == nil || cerr != nil {
			err = cerr
		}
		return err
	})
	if err != nil {
		return packAnswer{}, c.describe(fmt.Sprintf("fetch %s from", req.branch), err)
	}
	return ans, nil
}
