package gitrepo

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
)

// treeChanged reports whether a file paths accepts differs between the
// trees a and b (either may be zero: no tree) under dir. Entries whose
// hash and mode are equal are skipped without reading them; dirs that
// differ are read only when paths.MayHold them. The trees are read raw and
// compared entry by entry in git's order, so an unchanged entry costs a
// comparison of its bytes, not a decoded object.
func (h *History) treeChanged(a, b plumbing.Hash, dir string, paths Pathspec) (bool, error) {
	if a == b {
		return false, nil
	}
	ra, err := h.rawTree(a)
	if err != nil {
		return false, err
	}
	rb, err := h.rawTree(b)
	if err != nil {
		return false, err
	}
	ra, rb = skipCommonEntries(ra, rb)
	var ea, eb treeEntry
	var okA, okB bool
	if ea, ra, okA, err = nextEntry(ra, a); err != nil {
		return false, err
	}
	if eb, rb, okB, err = nextEntry(rb, b); err != nil {
		return false, err
	}
	for okA || okB {
		var inA, inB *treeEntry
		switch {
		case !okB || okA && compareEntries(ea, eb) < 0:
			inA = &ea
		case !okA || compareEntries(ea, eb) > 0:
			inB = &eb
		default:
			inA, inB = &ea, &eb
		}
		differs := inA == nil || inB == nil || inA.hash != inB.hash || inA.mode != inB.mode
		if differs {
			changed, err := h.entryChanged(inA, inB, dir, paths)
			if err != nil || changed {
				return changed, err
			}
		}
		if inA != nil {
			if ea, ra, okA, err = nextEntry(ra, a); err != nil {
				return false, err
			}
		}
		if inB != nil {
			if eb, rb, okB, err = nextEntry(rb, b); err != nil {
				return false, err
			}
		}
		// Past a difference, the rest is often the same bytes: done.
		if differs && okA && okB && ea.hash == eb.hash && bytes.Equal(ra, rb) && bytes.Equal(ea.name, eb.name) && ea.mode == eb.mode {
			return false, nil
		}
	}
	return false, nil
}

// skipCommonEntries drops the entries the raw trees a and b share at
// their start: equal bytes from the start are equal entries, so only the
// end of each entry is looked for, not its fields.
func skipCommonEntries(a, b []byte) ([]byte, []byte) {
	n := 0
	for m := min(len(a), len(b)); n < m; {
		step := min(1024, m-n)
		if bytes.Equal(a[n:n+step], b[n:n+step]) {
			n += step
			continue
		}
		if step == 1 {
			break
		}
		m = n + step - 1 // the first difference is in this chunk
		for n < m && a[n] == b[n] {
			n++
		}
		break
	}
	off := 0
	for {
		nul := bytes.IndexByte(a[off:], 0)
		end := off + nul + 1 + len(plumbing.ZeroHash)
		if nul < 0 || end > n {
			return a[off:], b[off:]
		}
		off = end
	}
}

// entryChanged reports whether an entry that differs between the trees a
// and b (inA, inB; nil: not in that tree) holds a file paths accepts. Both
// are dirs, or neither is (compareEntries keeps a file and a dir of one
// name apart).
func (h *History) entryChanged(inA, inB *treeEntry, dir string, paths Pathspec) (bool, error) {
	e := inA
	if e == nil {
		e = inB
	}
	name := string(e.name)
	if dir != "" {
		name = dir + "/" + name
	}
	if e.mode != filemode.Dir {
		return paths.Match(name), nil
	}
	if !paths.MayHold(name) {
		return false, nil
	}
	var a, b plumbing.Hash
	if inA != nil {
		a = inA.hash
	}
	if inB != nil {
		b = inB.hash
	}
	return h.treeChanged(a, b, name, paths)
}

// findFile looks file up from the tree root, reading only the trees on its
// path, and returns its blob: a regular or executable file, or a symlink
// (whose blob is its target), as filemode.IsFile says.
func (h *History) findFile(root plumbing.Hash, file string) (plumbing.Hash, bool, error) {
	for tree := root; ; {
		name, rest, inDir := strings.Cut(file, "/")
		e, found, err := h.lookup(tree, name)
		switch {
		case err != nil || !found:
			return plumbing.ZeroHash, false, err
		case !inDir:
			return e.hash, e.mode.IsFile(), nil
		case e.mode != filemode.Dir:
			return plumbing.ZeroHash, false, nil
		}
		tree, file = e.hash, rest
	}
}

// lookup finds the entry name in the tree.
func (h *History) lookup(tree plumbing.Hash, name string) (treeEntry, bool, error) {
	data, err := h.rawTree(tree)
	if err != nil {
		return treeEntry{}, false, err
	}
	for {
		e, rest, ok, err := nextEntry(data, tree)
		if err != nil || !ok || string(e.name) == name {
			return e, ok && err == nil, err
		}
		data = rest
	}
}

// rawTree reads the tree object hash as stored (nil for the zero hash;
// not to be modified).
func (h *History) rawTree(hash plumbing.Hash) ([]byte, error) {
	if hash.IsZero() {
		return nil, nil
	}
	data, err := h.object(plumbing.TreeObject, hash)
	if err != nil {
		return nil, fmt.Errorf("read tree %s: %w", short(hash), err)
	}
	return data, nil
}

// treeEntry is one entry of a raw tree: "<octal mode> <name>\0<20-byte hash>".
type treeEntry struct {
	mode filemode.FileMode
	name []byte
	hash plumbing.Hash
}

// nextEntry reads the first entry of the raw tree data (of the tree named
// tree, for errors), and returns the rest; ok is false at the end.
func nextEntry(data []byte, tree plumbing.Hash) (e treeEntry, rest []byte, ok bool, err error) {
	if len(data) == 0 {
		return e, nil, false, nil
	}
	sp := bytes.IndexByte(data, ' ')
	nul := bytes.IndexByte(data, 0)
	if sp <= 0 || nul < sp+2 || len(data) < nul+1+len(e.hash) {
		return e, nil, false, fmt.Errorf("tree %s is malformed", short(tree))
	}
	var mode uint32
	for _, c := range data[:sp] {
		if c < '0' || c > '7' || mode > 1<<24 {
			return e, nil, false, fmt.Errorf("tree %s is malformed: entry mode %q", short(tree), data[:sp])
		}
		mode = mode<<3 | uint32(c-'0')
	}
	e.mode, e.name = filemode.FileMode(mode), data[sp+1:nul]
	copy(e.hash[:], data[nul+1:])
	return e, data[nul+1+len(e.hash):], true, nil
}

// compareEntries orders entries as git sorts a tree: by name, a dir's name
// as if it ended in "/".
func compareEntries(a, b treeEntry) int {
	n := min(len(a.name), len(b.name))
	if c := bytes.Compare(a.name[:n], b.name[:n]); c != 0 {
		return c
	}
	return int(a.after(n)) - int(b.after(n))
}

// after is the byte after the first n of e's name in git's order: the next
// one, "/" at the end of a dir's name, or 0 at the end of a file's.
func (e treeEntry) after(n int) byte {
	switch {
	case n < len(e.name):
		return e.name[n]
	case e.mode == filemode.Dir:
		return '/'
	}
	return 0
}
