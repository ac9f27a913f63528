package gitrepo

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/index"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// Snapshot is a branch tip fetched into memory. Edits are staged with
// WriteFile and become one commit with Commit; tags with Tag. Nothing touches
// a work tree on disk.
type Snapshot struct {
	repo   *git.Repository
	branch string
	// Head is the fetched tip, nil when the branch does not exist yet.
	Head *object.Commit

	staged  map[string][]byte
	commit  *object.Commit
	newTags map[string]plumbing.Hash
	// created: the branch does not exist on the remote yet; Head is the
	// commit it starts from (StartFrom).
	created bool
	// blobs maps each file path at Head to its blob, built on first read:
	// go-git decodes every tree on the path again for each lookup, which
	// made reading 2,000 files cost seconds.
	blobs map[string]plumbing.Hash
	// blobsMu guards building blobs: reads may run beside a Checkout.
	blobsMu sync.Mutex
	// signer signs the commits and tags made (Update sets the client's).
	signer *Signer
	// refs is the remote's ref advertisement the snapshot was fetched
	// with (nil: not kept).
	refs *packp.AdvRefs
}

func newSnapshot(repo *git.Repository, branch string, head *object.Commit) *Snapshot {
	return &Snapshot{repo: repo, branch: branch, Head: head, staged: map[string][]byte{}, newTags: map[string]plumbing.Hash{}}
}

// Branch is the branch the snapshot was taken of.
func (s *Snapshot) Branch() string { return s.branch }

// HeadHash is the fetched tip, or the zero hash for a new branch.
func (s *Snapshot) HeadHash() plumbing.Hash {
	if s.Head == nil {
		return plumbing.ZeroHash
	}
	return s.Head.Hash
}

// ReadFile returns the content of name at the tip (with staged edits), and
// whether it exists. Reads (ReadFile, Files, ReadFiles, Checkout) may run
// at the same time as each other, not beside a write (WriteFile, Commit,
// At).
func (s *Snapshot) ReadFile(name string) ([]byte, bool, error) {
	name = path.Clean(strings.TrimPrefix(name, "/"))
	if data, ok := s.staged[name]; ok {
		return data, true, nil
	}
	if s.Head == nil {
		return nil, false, nil
	}
	h, ok, err := s.blob(name)
	if err != nil {
		return nil, false, err
	}
	if !ok {
		return nil, false, nil
	}
	blob, err := s.repo.BlobObject(h)
	if err != nil {
		return nil, false, fmt.Errorf("read %s at %s: %w", name, short(s.Head.Hash), err)
	}
	r, err := blob.Reader()
	if err != nil {
		return nil, false, fmt.Errorf("read %s at %s: %w", name, short(s.Head.Hash), err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, false, fmt.Errorf("read %s at %s: %w", name, short(s.Head.Hash), err)
	}
	return data, true, nil
}

// blob is the blob of name at Head, from the index of every file's blob
// built at the first call.
func (s *Snapshot) blob(name string) (plumbing.Hash, bool, error) {
	s.blobsMu.Lock()
	defer s.blobsMu.Unlock()
	if s.blobs == nil {
		blobs := map[string]plumbing.Hash{}
		if err := s.Files(func(name string, f *object.File) error {
			blobs[name] = f.Hash
			return nil
		}); err != nil {
			return plumbing.ZeroHash, false, fmt.Errorf("list files at %s: %w", short(s.Head.Hash), err)
		}
		s.blobs = blobs
	}
	h, ok := s.blobs[name]
	return h, ok, nil
}

// WriteFile stages new content for name; Commit records it.
func (s *Snapshot) WriteFile(name string, data []byte) {
	s.staged[path.Clean(strings.TrimPrefix(name, "/"))] = data
}

// Files calls fn for every regular file at the tip, in path order.
func (s *Snapshot) Files(fn func(name string, f *object.File) error) error {
	if s.Head == nil {
		return nil
	}
	tree, err := s.Head.Tree()
	if err != nil {
		return err
	}
	return tree.Files().ForEach(func(f *object.File) error {
		if !f.Mode.IsFile() {
			return nil
		}
		return fn(f.Name, f)
	})
}

// ReadFiles calls fn with the path, permission bits (0644, or 0755 for an
// executable), size and content of every regular file at the tip whose path
// keep accepts (nil: all), in path order. The content is streamed from the
// fetched objects, not copied.
func (s *Snapshot) ReadFiles(keep func(name string) bool, fn func(name string, perm os.FileMode, size int64, content io.Reader) error) error {
	return s.Files(func(name string, f *object.File) error {
		if keep != nil && !keep(name) {
			return nil
		}
		r, err := f.Reader()
		if err != nil {
			return fmt.Errorf("read %s at %s: %w", name, short(s.Head.Hash), err)
		}
		defer r.Close()
		perm := os.FileMode(0o644)
		if f.Mode == filemode.Executable {
			perm = 0o755
		}
		return fn(name, perm, f.Size, r)
	})
}

// Signature is a commit's author and committer.
type Signature struct{ Name, Email string }

// Commit records the staged files as one commit on top of Head. It returns
// false (and makes no commit) when the staged content equals the tip.
func (s *Snapshot) Commit(message string, who Signature) (bool, error) {
	var base plumbing.Hash
	if s.Head != nil {
		base = s.Head.TreeHash
	}
	tree, err := s.writeTree(base, "", s.staged)
	if err != nil {
		return false, fmt.Errorf("build tree: %w", err)
	}
	if tree == base && s.Head != nil {
		return false, nil
	}
	now := time.Now()
	sig := object.Signature{Name: who.Name, Email: who.Email, When: now}
	c := &object.Commit{Author: sig, Committer: sig, Message: message, TreeHash: tree}
	if s.Head != nil {
		c.ParentHashes = []plumbing.Hash{s.Head.Hash}
	}
	h, err := s.store(c)
	if err != nil {
		return false, fmt.Errorf("write commit: %w", err)
	}
	if s.commit, err = s.repo.CommitObject(h); err != nil {
		return false, err
	}
	return true, nil
}

// NewCommit is the commit made by Commit, or nil.
func (s *Snapshot) NewCommit() *object.Commit { return s.commit }

// Tag creates an annotated tag object named name pointing at target.
func (s *Snapshot) Tag(name string, target plumbing.Hash, message string, who Signature) error {
	sig := object.Signature{Name: who.Name, Email: who.Email, When: time.Now()}
	t := &object.Tag{Name: name, Tagger: sig, Message: message, TargetType: plumbing.CommitObject, Target: target}
	h, err := s.store(t)
	if err != nil {
		return fmt.Errorf("write tag %s: %w", name, err)
	}
	s.newTags[name] = h
	return nil
}

type encoder interface {
	Encode(plumbing.EncodedObject) error
}

// store writes o, signed first when it is a commit or tag and the snapshot
// has a signer: a commit re-made after a lost race is signed again.
func (s *Snapshot) store(o encoder) (plumbing.Hash, error) {
	if err := s.sign(o); err != nil {
		return plumbing.ZeroHash, err
	}
	obj := s.repo.Storer.NewEncodedObject()
	if err := o.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return s.repo.Storer.SetEncodedObject(obj)
}

// writeTree returns the hash of the tree at dir after applying the changes
// under it, writing only the trees that change.
func (s *Snapshot) writeTree(base plumbing.Hash, dir string, changes map[string][]byte) (plumbing.Hash, error) {
	entries := map[string]object.TreeEntry{}
	if !base.IsZero() {
		t, err := object.GetTree(s.repo.Storer, base)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		for _, e := range t.Entries {
			entries[e.Name] = e
		}
	}
	sub := map[string]map[string][]byte{}
	for name, data := range changes {
		first, rest, nested := strings.Cut(name, "/")
		if !nested {
			blob := s.repo.Storer.NewEncodedObject()
			blob.SetType(plumbing.BlobObject)
			w, _ := blob.Writer()
			if _, err := w.Write(data); err != nil {
				return plumbing.ZeroHash, err
			}
			w.Close()
			h, err := s.repo.Storer.SetEncodedObject(blob)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			mode := filemode.Regular
			if old, ok := entries[first]; ok && old.Mode == filemode.Executable {
				mode = old.Mode
			}
			entries[first] = object.TreeEntry{Name: first, Mode: mode, Hash: h}
			continue
		}
		if sub[first] == nil {
			sub[first] = map[string][]byte{}
		}
		sub[first][rest] = data
	}
	for name, ch := range sub {
		var childBase plumbing.Hash
		if old, ok := entries[name]; ok && old.Mode == filemode.Dir {
			childBase = old.Hash
		}
		h, err := s.writeTree(childBase, path.Join(dir, name), ch)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		entries[name] = object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h}
	}
	tree := &object.Tree{}
	for _, e := range entries {
		tree.Entries = append(tree.Entries, e)
	}
	sort.Slice(tree.Entries, func(i, j int) bool { return treeSortKey(tree.Entries[i]) < treeSortKey(tree.Entries[j]) })
	return s.store(tree)
}

// treeSortKey orders entries as git does: directories sort as if their
// name ended in "/".
func treeSortKey(e object.TreeEntry) string {
	if e.Mode == filemode.Dir {
		return e.Name + "/"
	}
	return e.Name
}

// Checkout writes the files at the tip whose paths keep accepts (nil: all)
// under dir. A tree holding a path git refuses (ValidPath: a .git dir in
// any spelling, whose config or hooks the next git command in dir would
// run; "." or "..") is refused whole, naming such paths, before anything
// is written. Files are written through an os.Root of dir, so none lands
// outside it, whatever dir already holds.
func (s *Snapshot) Checkout(dir string, keep func(name string) bool) error {
	_, err := s.checkout(dir, keep)
	return err
}

// checkout is Checkout, returning the index entry of each file written
// (its blob and mode, and the stat data of the file as written), in path
// order. The tree is read once; each dir is made and opened once, and the
// dirs on the way to the file last written stay open (os.Root each), so a
// file costs one open, not a walk from dir.
func (s *Snapshot) checkout(dir string, keep func(name string) bool) ([]*index.Entry, error) {
	var files []*object.File
	var refused []string
	err := s.Files(func(name string, f *object.File) error {
		if keep != nil && !keep(name) {
			return nil
		}
		if err := ValidPath(name); err != nil {
			refused = append(refused, err.Error())
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := refusal(refused); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	dirs := &openDirs{root: root}
	defer dirs.close()
	entries := make([]*index.Entry, 0, len(files))
	for _, f := range files {
		e, err := dirs.write(f)
		if err != nil {
			return nil, fmt.Errorf("write %s: %w", f.Name, err)
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// openDirs makes and opens the dirs Checkout writes files in, keeping
// open (as an os.Root each, within root) those on the path of the last
// file: files come in path order, so the next one is mostly in the same
// dir.
type openDirs struct {
	root  *os.Root
	names []string   // the dirs open, from root down
	roots []*os.Root // roots[i] is names[:i+1]
}

// in returns the dir whose path from root is parts, made if missing.
func (d *openDirs) in(parts []string) (*os.Root, error) {
	n := 0
	for n < len(parts) && n < len(d.names) && parts[n] == d.names[n] {
		n++
	}
	d.closeFrom(n)
	cur := d.root
	if n > 0 {
		cur = d.roots[n-1]
	}
	for _, name := range parts[n:] {
		if err := cur.Mkdir(name, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		sub, err := cur.OpenRoot(name)
		if err != nil {
			return nil, err
		}
		d.names, d.roots = append(d.names, name), append(d.roots, sub)
		cur = sub
	}
	return cur, nil
}

// write writes f's content to its path and returns its index entry.
func (d *openDirs) write(f *object.File) (*index.Entry, error) {
	parts := strings.Split(f.Name, "/")
	dir, err := d.in(parts[:len(parts)-1])
	if err != nil {
		return nil, err
	}
	perm := os.FileMode(0o644)
	if f.Mode == filemode.Executable {
		perm = 0o755
	}
	r, err := f.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	out, err := dir.OpenFile(parts[len(parts)-1], os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(out, r)
	var fi os.FileInfo
	if err == nil {
		fi, err = out.Stat() // the last write set its mtime; close does not
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	e := &index.Entry{Hash: f.Hash, Name: f.Name, Mode: f.Mode, ModifiedAt: fi.ModTime(), Size: uint32(fi.Size())}
	statEntry(e, fi)
	return e, nil
}

// closeFrom closes the dirs open below the first n.
func (d *openDirs) closeFrom(n int) {
	for i := len(d.roots) - 1; i >= n; i-- {
		d.roots[i].Close()
	}
	d.names, d.roots = d.names[:n], d.roots[:n]
}

func (d *openDirs) close() {
	d.closeFrom(0)
	d.root.Close()
}

// refusal is the error for the refused paths, or nil.
func refusal(refused []string) error {
	if n := len(refused); n > 0 {
		if n > maxNamed {
			refused = append(refused[:maxNamed], fmt.Sprintf("and %d more", n-maxNamed))
		}
		return fmt.Errorf("refusing the tree, nothing written: %s", strings.Join(refused, "; "))
	}
	return nil
}

// maxNamed bounds how many refused paths an error lists.
const maxNamed = 10

// Log walks the history from Head, newest first, until fn returns
// ErrStop or history (as fetched) ends.
func (s *Snapshot) Log(fn func(c *object.Commit) error) error {
	if s.Head == nil {
		return nil
	}
	iter := object.NewCommitPreorderIter(s.Head, nil, nil)
	err := iter.ForEach(fn)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil // the shallow boundary
	}
	return err
}

// ErrStop ends a Log walk early without an error.
var ErrStop = storer.ErrStop

func short(h plumbing.Hash) string { return h.String()[:8] }

// At moves the snapshot to commit h, which must be in its storage (the
// fetched tip's history, or fetched with Client.FetchCommit), so reads see
// the tree at h. Staged files are dropped. It is for reading an older
// version; a snapshot moved off the branch tip cannot be pushed.
func (s *Snapshot) At(h plumbing.Hash) error {
	c, err := s.repo.CommitObject(h)
	if err != nil {
		return fmt.Errorf("commit %s is not in the fetched history: %w", h, err)
	}
	s.Head, s.staged, s.blobs = c, map[string][]byte{}, nil
	return nil
}

// StartFrom makes a snapshot of a branch that does not exist yet start at
// commit h (in its storage, e.g. fetched with Client.FetchCommit): Commit
// builds on h, and Update's push creates the branch. If another writer
// creates the branch first, the push is refused as a lost race and Update
// re-applies the edit on their tip.
func (s *Snapshot) StartFrom(h plumbing.Hash) error {
	if s.Head != nil {
		return fmt.Errorf("branch %s already exists", s.branch)
	}
	if err := s.At(h); err != nil {
		return err
	}
	s.created = true
	return nil
}
