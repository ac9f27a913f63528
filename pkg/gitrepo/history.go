package gitrepo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// deepenBy is how much deeper each fetch of a History goes than the one
// before: the commits fetched stay within deepenBy times what the walk
// needs, not the branch's whole history. Each deepening fetches only the
// commits beyond those held (uploadPack, driven by hand: go-git cannot
// deepen a shallow clone in place), so more steps cost little more than
// fewer: each is one more request, and git sends again the trees of the
// commits it unshallows.
const deepenBy = 3

// History is the first-parent history of a branch as git log
// --first-parent walks it, for questions whose answer may lie far back
// ("which commits since X changed these paths?"). It is fetched into a
// temporary dir under os.TempDir(), so the packs stay on disk and memory
// holds their indexes, the instructions of their deltas (up to
// maxKeptDeltas) and the objects last read (packCache); Close removes the
// dir.
//
// The first fetch takes depth commits (0: all of them). When a walk needs
// what lies beyond them (the parent of the last commit fetched, to go on
// or to compare with it), the branch is deepened in place deepenBy times
// deeper (one more pack: the commits beyond, and the trees and blobs they
// do not share with those held), and the walk goes on where it was: a
// commit whose parent was not fetched is never compared with nothing.
//
// A server that does not filter (a stock git http-backend, whose
// uploadpack.allowFilter is off) sends every tree and blob of the commits
// fetched; they go to disk as they arrive, checked as every fetch is
// (MaxPackObjects, MaxPackMemory, MaxPackBytes), and are indexed in memory
// (packReader).
//
// A question is a Walk with a Pathspec, answered as soon as it can be:
//
//	h, err := client.History(ctx, "main", 100)
//	if err != nil { … }
//	defer h.Close()
//	err = h.Walk(ctx, func(c *gitrepo.HistoryCommit) error {
//		changed, err := c.Changed(paths) // e.g. the version file
//		if err != nil || !changed {
//			return err
//		}
//		found = c.Hash
//		return gitrepo.ErrStop
//	})
type History struct {
	c      *Client
	branch string
	dir    string
	// packs are the packs fetched, the first fetch's first: each deepening
	// adds one, holding only what the ones before do not.
	packs []*packReader
	// cache holds the inflated objects last read, of all the packs.
	cache *byteCache
	// objects is how many objects the packs hold.
	objects int
	// tip is the branch's commit at the first fetch, zero when the branch
	// does not exist.
	tip plumbing.Hash
	// shallow are the fetched commits whose parents were not fetched.
	shallow map[plumbing.Hash]bool
	// depth of the last fetch, 0 for all of the branch.
	depth int
}

// History fetches the last depth commits of branch (0: all). A branch that
// does not exist gives a History whose Tip is zero and whose walks are
// empty.
func (c *Client) History(ctx context.Context, branch string, depth int) (*History, error) {
	dir, err := os.MkdirTemp("", "gitops-resource-history-")
	if err != nil {
		return nil, err
	}
	h := &History{c: c, branch: branch, dir: dir, shallow: map[plumbing.Hash]bool{}, cache: newByteCache(packCache)}
	if err := h.fetch(ctx, depth); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// Tip is the commit the branch pointed at when it was fetched, or the zero
// hash when it does not exist.
func (h *History) Tip() plumbing.Hash { return h.tip }

// Close removes what the history fetched.
func (h *History) Close() {
	for _, p := range h.packs {
		p.Close()
	}
	if h.dir != "" {
		os.RemoveAll(h.dir)
	}
	h.packs, h.dir = nil, ""
}

// Walk calls fn with each commit on the first-parent chain from Tip,
// newest first, until fn returns ErrStop or the chain ends at a commit
// without parents. What fn may ask of each commit: HistoryCommit.Changed
// and HistoryCommit.ReadFile.
// Tags, other branches and the other parents of merges are not walked, as
// with git log --first-parent.
func (h *History) Walk(ctx context.Context, fn func(c *HistoryCommit) error) error {
	for next := h.tip; !next.IsZero(); {
		c, err := h.commit(next)
		if err != nil {
			return err
		}
		err = fn(&HistoryCommit{Commit: c, ctx: ctx, h: h})
		if errors.Is(err, ErrStop) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(c.ParentHashes) == 0 {
			return nil
		}
		if err := h.beyond(ctx, c.Hash); err != nil {
			return err
		}
		next = c.ParentHashes[0]
	}
	return nil
}

// HistoryCommit is a commit met by History.Walk: the fields of
// object.Commit, decoded without a storer (its Tree, Parents and Files
// methods are not available: ask Changed and ReadFile).
type HistoryCommit struct {
	*object.Commit
	ctx context.Context
	h   *History
}

// Pathspec says which files a question is about. Match reports whether a
// file (a path with / separators, from the repository's root) is one;
// MayHold reports whether a dir may hold one, and is asked before the dir
// is read: a dir it rules out is never compared. Say true when unsure.
type Pathspec interface {
	Match(file string) bool
	MayHold(dir string) bool
}

// Changed reports whether a file paths accepts differs between the commit
// and its first parent, as git log --first-parent -- <paths> decides it:
// added, removed, or another content or mode. A commit without parents
// changes every file it has. Trees are compared by hash, from the root
// down, and only into the dirs whose hashes differ and that paths.MayHold:
// a question about apps/web/ reads the trees on that path and no other.
func (c *HistoryCommit) Changed(paths Pathspec) (bool, error) {
	var parentTree plumbing.Hash
	if len(c.ParentHashes) > 0 {
		if err := c.h.beyond(c.ctx, c.Hash); err != nil {
			return false, err
		}
		p, err := c.h.commit(c.ParentHashes[0])
		if err != nil {
			return false, err
		}
		parentTree = p.TreeHash
	}
	changed, err := c.h.treeChanged(c.TreeHash, parentTree, "", paths)
	if err != nil {
		return false, fmt.Errorf("compare commit %s with its parent: %w", short(c.Hash), err)
	}
	return changed, nil
}

// ErrFileTooLarge is what HistoryCommit.ReadFile's error wraps when the
// file is larger than it may read.
var ErrFileTooLarge = errors.New("file too large to read")

// ReadFile returns the content of the file name (a path with / separators,
// from the repository's root) at the commit, and whether the commit has
// such a file: a dir, a submodule or nothing at that path is none. Only
// the trees along the path are read, and a file of more than max bytes is
// not read at all: the error then wraps ErrFileTooLarge.
func (c *HistoryCommit) ReadFile(name string, max int64) ([]byte, bool, error) {
	name = path.Clean(strings.TrimPrefix(name, "/"))
	blob, found, err := c.h.findFile(c.TreeHash, name)
	if err != nil || !found {
		if err != nil {
			err = fmt.Errorf("find %s at %s: %w", name, short(c.Hash), err)
		}
		return nil, false, err
	}
	if size := c.h.size(blob); size > max {
		return nil, false, fmt.Errorf("read %s at %s: %w (%d bytes, at most %d are read)", name, short(c.Hash), ErrFileTooLarge, size, max)
	}
	data, err := c.h.object(plumbing.BlobObject, blob)
	if err != nil {
		return nil, false, fmt.Errorf("read %s at %s: %w", name, short(c.Hash), err)
	}
	return bytes.Clone(data), true, nil
}

// beyond makes the parents of commit h available: when h is at the edge
// of what was fetched, it fetches deepenBy times deeper.
func (h *History) beyond(ctx context.Context, commit plumbing.Hash) error {
	if !h.shallow[commit] {
		return nil
	}
	depth := h.depth * deepenBy
	fmt.Fprintf(h.c.log, "reading past the %d commits fetched of %s: fetching %d\n", h.depth, h.branch, depth)
	if err := h.fetch(ctx, depth); err != nil {
		return err
	}
	if _, err := h.commit(commit); err != nil {
		return fmt.Errorf("%s on %s was rewritten while it was read (commit %s is gone): %w", h.branch, h.c.URL(), short(commit), err)
	}
	return nil
}

func (h *History) commit(hash plumbing.Hash) (*object.Commit, error) {
	data, err := h.object(plumbing.CommitObject, hash)
	if err != nil {
		return nil, fmt.Errorf("read commit %s of %s: %w", short(hash), h.branch, err)
	}
	o := &plumbing.MemoryObject{}
	o.SetType(plumbing.CommitObject)
	o.Write(data)
	c := &object.Commit{}
	if err := c.Decode(o); err != nil {
		return nil, fmt.Errorf("read commit %s of %s: %w", short(hash), h.branch, err)
	}
	return c, nil
}

// object returns the content of the object hash, of type typ (not to be
// modified).
func (h *History) object(typ plumbing.ObjectType, hash plumbing.Hash) ([]byte, error) {
	for _, p := range h.packs {
		t, data, ok, err := p.object(hash)
		switch {
		case err != nil:
			return nil, err
		case !ok:
			continue
		case t != typ:
			return nil, fmt.Errorf("%s is a %s, not a %s", short(hash), t, typ)
		}
		return data, nil
	}
	return nil, plumbing.ErrObjectNotFound
}

// size is the inflated size of the object hash, without reading it (0 when
// no pack has it).
func (h *History) size(hash plumbing.Hash) int64 {
	for _, p := range h.packs {
		if n, ok := p.size(hash); ok {
			return n
		}
	}
	return 0
}

// fetch fetches the branch depth commits deep (0: all of it) into a new
// pack in the history's dir. The first fetch asks for everything; each
// later one deepens what is there in place: it tells the server which
// commits the history has (the first tip) and where it is cut, so the
// server sends only the commits beyond and the trees and blobs they do not
// share with those. The tip stays the first fetch's: a branch that moved
// on since still holds it.
func (h *History) fetch(ctx context.Context, depth int) error {
	req := packRequest{branch: h.branch, depth: depth}
	if !h.tip.IsZero() {
		req.haves = []plumbing.Hash{h.tip}
		for s := range h.shallow {
			req.shallows = append(req.shallows, s)
		}
		if depth == 0 {
			// All of it: deeper than any history, as git fetch --unshallow.
			req.depth = infiniteDepth
		}
	}
	return h.c.backoff.Do(ctx, h.c.log, "fetch "+h.branch+" from "+h.c.URL(), func() error {
		f, err := os.CreateTemp(h.dir, "pack-")
		if err != nil {
			return err
		}
		var pack *packReader
		ans, err := h.c.uploadPack(ctx, req, func(r io.Reader) error {
			if _, err := io.Copy(f, r); err != nil {
				return err
			}
			pack, err = readPack(f, h.cache, h.objects)
			return err
		})
		if err == nil && !ans.tip.IsZero() && pack == nil {
			err = fmt.Errorf("fetch %s from %s: the server sent no pack", h.branch, h.c.URL())
		}
		if err != nil || pack == nil {
			f.Close()
			os.Remove(f.Name())
			return err
		}
		if h.tip.IsZero() {
			h.tip = ans.tip
		}
		h.packs = append(h.packs, pack)
		h.objects += len(pack.objs)
		h.depth = depth
		for _, s := range ans.unshallows {
			delete(h.shallow, s)
		}
		for _, s := range ans.shallows {
			h.shallow[s] = true
		}
		return nil
	})
}

// infiniteDepth is git's "deepen" for all of history (INFINITE_DEPTH).
const infiniteDepth = 0x7fffffff
