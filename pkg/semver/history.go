package semver

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/Masterminds/semver/v3"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/gitops-resource/gitops-resource/pkg/gitrepo"
)

// maxHistoryFile bounds what is read of an old version file: a version is a
// few bytes, and an old file that holds more is no version.
const maxHistoryFile = 4 << 10

// fileHistory lists the versions file held on the first-parent line of
// snap's branch from the version from on, oldest first, ending with the one
// at the tip. It is nil when the file never held from on that line (as far
// as the snapshot's history reaches). Consecutive commits holding the same
// number count once; a commit where the file is missing, or holds no
// version, adds nothing.
//
// The walk goes from the tip down first parents and stops at the newest
// commit holding from. It reads the file's blob only where the file's
// entry changed: a commit whose root tree is its child's is passed over
// without reading a tree, and otherwise only the trees along the file's
// path are read, never whole trees or diffs.
func fileHistory(snap *gitrepo.Snapshot, file string, from *semver.Version) ([]*semver.Version, error) {
	var newestFirst []*semver.Version
	var entry, tree plumbing.Hash
	for c, first := snap.Head, true; c != nil; first = false {
		if first || c.TreeHash != tree {
			h, err := fileEntry(c, file)
			if err != nil {
				return nil, err
			}
			if first || h != entry {
				v, err := readVersionBlob(c, h)
				if err != nil {
					return nil, err
				}
				if v != nil && (len(newestFirst) == 0 || newestFirst[len(newestFirst)-1].String() != v.String()) {
					newestFirst = append(newestFirst, v)
					if v.String() == from.String() {
						slices.Reverse(newestFirst)
						return newestFirst, nil
					}
				}
			}
			entry, tree = h, c.TreeHash
		}
		next, err := firstParent(c)
		if err != nil {
			return nil, err
		}
		c = next
	}
	return nil, nil
}

// fileEntry is the blob hash of file in c's tree, or the zero hash when
// there is no such file. Only the trees along the path are read.
func fileEntry(c *object.Commit, file string) (plumbing.Hash, error) {
	tree, err := c.Tree()
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("read the tree of %s: %w", c.Hash, err)
	}
	e, err := tree.FindEntry(file)
	switch {
	case errors.Is(err, object.ErrEntryNotFound), errors.Is(err, object.ErrDirectoryNotFound):
		return plumbing.ZeroHash, nil
	case err != nil:
		return plumbing.ZeroHash, fmt.Errorf("find %s at %s: %w", file, c.Hash, err)
	case !e.Mode.IsFile():
		return plumbing.ZeroHash, nil
	}
	return e.Hash, nil
}

// readVersionBlob is the version the blob h holds, or nil when h is the zero
// hash or holds no version.
func readVersionBlob(c *object.Commit, h plumbing.Hash) (*semver.Version, error) {
	if h.IsZero() {
		return nil, nil
	}
	tree, err := c.Tree() // decoded already: go-git caches objects
	if err != nil {
		return nil, fmt.Errorf("read the tree of %s: %w", c.Hash, err)
	}
	f, err := tree.TreeEntryFile(&object.TreeEntry{Hash: h})
	if err != nil {
		return nil, fmt.Errorf("read blob %s at %s: %w", h, c.Hash, err)
	}
	if f.Size > maxHistoryFile {
		return nil, nil
	}
	r, err := f.Reader()
	if err != nil {
		return nil, fmt.Errorf("read blob %s at %s: %w", h, c.Hash, err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read blob %s at %s: %w", h, c.Hash, err)
	}
	v, err := parseFileNumber(string(data))
	if err != nil {
		return nil, nil // an old content that is no version is passed over
	}
	return v, nil
}

// firstParent is c's first parent, or nil at a root commit or at the edge
// of the fetched history.
func firstParent(c *object.Commit) (*object.Commit, error) {
	if c.NumParents() == 0 {
		return nil, nil
	}
	p, err := c.Parent(0)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, nil // the shallow boundary
	}
	if err != nil {
		return nil, fmt.Errorf("read the parent of %s: %w", c.Hash, err)
	}
	return p, nil
}
