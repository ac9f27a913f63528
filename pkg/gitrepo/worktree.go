package gitrepo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	formatcfg "github.com/go-git/go-git/v5/plumbing/format/config"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
	"github.com/go-git/go-git/v5/plumbing/format/index"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
)

// keptPack is a pack as a fetch received it (checked), with its index.
type keptPack struct {
	data []byte
	idx  *idxfile.MemoryIndex
	sum  plumbing.Hash
}

// packKeepingStorage is a Snapshot's in-memory storage when the client
// fetches ForCheckout: it also keeps each pack as it came, so that
// CheckoutRepository writes the fetch itself as the repository's objects.
// The index of a pack is built by the same parse that fills the memory.
type packKeepingStorage struct {
	boundedStorage
	packs *[]keptPack
}

func newPackKeepingStorage() packKeepingStorage {
	return packKeepingStorage{newStorage(), new([]keptPack)}
}

// PackfileWriter implements storer.PackfileWriter.
func (s packKeepingStorage) PackfileWriter() (io.WriteCloser, error) {
	return newCheckedPackWriter(packLimits{MaxPackObjects, MaxPackMemory, MaxPackBytes}, s.parsePack), nil
}

// parsePack reads a checked pack into memory, and keeps it as it came.
func (s packKeepingStorage) parsePack(r io.Reader) error {
	var data bytes.Buffer
	idx := new(idxfile.Writer)
	p, err := packfile.NewParserWithStorage(packfile.NewScanner(io.TeeReader(r, &data)), s.Storage, idx)
	if err != nil {
		return err
	}
	sum, err := p.Parse()
	if err != nil {
		return err
	}
	mi, err := idx.Index()
	if err != nil {
		return err
	}
	*s.packs = append(*s.packs, keptPack{data: data.Bytes(), idx: mi, sum: sum})
	return nil
}

// adopt makes the objects (and the kept packs, and shallow commits) of
// other, a fetch into storage of its own, part of s.
func (s *Snapshot) adopt(other *Snapshot) error {
	from, ok := storageOf(other)
	if !ok {
		return errors.New("gitrepo: adopt from a storage that is not in memory")
	}
	for _, obj := range from.ObjectStorage.Objects {
		if _, err := s.repo.Storer.SetEncodedObject(obj); err != nil {
			return err
		}
	}
	theirs, err := other.repo.Storer.Shallow()
	if err != nil {
		return err
	}
	mine, err := s.repo.Storer.Shallow()
	if err != nil {
		return err
	}
	if err := s.repo.Storer.SetShallow(append(mine, theirs...)); err != nil {
		return err
	}
	if keep, ok := s.repo.Storer.(packKeepingStorage); ok {
		if theirs, ok := other.repo.Storer.(packKeepingStorage); ok {
			*keep.packs = append(*keep.packs, *theirs.packs...)
		}
	}
	return nil
}

// storageOf is the in-memory storage of a snapshot.
func storageOf(s *Snapshot) (boundedStorage, bool) {
	switch st := s.repo.Storer.(type) {
	case boundedStorage:
		return st, true
	case packKeepingStorage:
		return st.boundedStorage, true
	}
	return boundedStorage{}, false
}

// Checkout is what CheckoutRepository writes besides the tree and the
// objects: where the commit comes from.
type Checkout struct {
	// URL is the remote's URL without credentials (origin's url).
	URL string
	// Tags are the remote's tags on the commit, lightweight or annotated.
	Tags []string
}

// CheckoutRepository writes the tree at Head under dir as Checkout does,
// and beside it dir/.git: a shallow repository at Head, as `git clone
// --depth` then `git checkout <sha>` leave it. Its objects are the packs
// the client fetched (ForCheckout), as they came; HEAD is detached at Head;
// the branch and origin's remote-tracking branch are at the tip fetched;
// the index matches the files written, stat data included, so `git status`
// finds the work tree clean. Symbolic links, which Checkout writes as files
// holding their target, are read so by git too (core.symlinks false).
//
// It also writes concourse/git-resource's files in .git/ (WriteResourceFiles).
// A tree Checkout refuses writes nothing, .git included.
func (s *Snapshot) CheckoutRepository(dir string, co Checkout) error {
	keep, ok := s.repo.Storer.(packKeepingStorage)
	if !ok || s.Head == nil {
		return errors.New("gitrepo: CheckoutRepository needs a snapshot fetched ForCheckout")
	}
	entries, err := s.checkout(dir, nil)
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	var idx bytes.Buffer
	if err := index.NewEncoder(&idx).Encode(&index.Index{Version: 2, Entries: entries}); err != nil {
		return fmt.Errorf("index the files written: %w", err)
	}
	tip, err := s.repo.Reference(plumbing.NewRemoteReferenceName("origin", s.branch), true)
	if err != nil {
		return fmt.Errorf("the tip of %s fetched: %w", s.branch, err)
	}
	shallow, err := s.shallow()
	if err != nil {
		return err
	}
	for _, d := range []string{".git/objects/pack", ".git/objects/info", ".git/refs/heads", ".git/refs/tags"} {
		if err := root.MkdirAll(filepath.FromSlash(d), 0o755); err != nil {
			return err
		}
	}
	files := map[string][]byte{
		"HEAD":        []byte(s.Head.Hash.String() + "\n"),
		"config":      repoConfig(s.branch, co.URL),
		"packed-refs": []byte(fmt.Sprintf("# pack-refs with: peeled fully-peeled sorted \n%s %s\n%s %s\n", tip.Hash(), plumbing.NewBranchReferenceName(s.branch), tip.Hash(), tip.Name())),
		"shallow":     shallow,
		"index":       idx.Bytes(),
	}
	for _, p := range *keep.packs {
		var idxData bytes.Buffer
		if _, err := idxfile.NewEncoder(&idxData).Encode(p.idx); err != nil {
			return fmt.Errorf("encode the index of pack %s: %w", p.sum, err)
		}
		name := "objects/pack/pack-" + p.sum.String()
		files[name+".pack"], files[name+".idx"] = p.data, idxData.Bytes()
	}
	if err := writeGitFiles(root, files); err != nil {
		return err
	}
	return s.WriteResourceFiles(root, co)
}

// writeGitFiles writes each of files (names relative to .git) under
// root's .git; packs and their indexes read-only, as git writes them.
func writeGitFiles(root *os.Root, files map[string][]byte) error {
	for name, data := range files {
		perm := os.FileMode(0o644)
		if strings.HasPrefix(name, "objects/pack/") {
			perm = 0o444
		}
		if err := root.WriteFile(filepath.Join(".git", filepath.FromSlash(name)), data, perm); err != nil {
			return fmt.Errorf("write .git/%s: %w", name, err)
		}
	}
	return nil
}

// shallow is .git/shallow: the commits fetched whose parents were not.
func (s *Snapshot) shallow() ([]byte, error) {
	commits, err := s.repo.Storer.Shallow()
	if err != nil {
		return nil, err
	}
	seen := map[plumbing.Hash]bool{}
	var lines []string
	for _, h := range commits {
		if seen[h] {
			continue
		}
		seen[h] = true
		c, err := s.repo.CommitObject(h)
		if err != nil {
			continue
		}
		for _, p := range c.ParentHashes {
			if _, err := s.repo.Storer.EncodedObject(plumbing.CommitObject, p); err != nil {
				lines = append(lines, h.String())
				break
			}
		}
	}
	sort.Strings(lines)
	if len(lines) == 0 {
		return nil, nil
	}
	return []byte(strings.Join(lines, "\n") + "\n"), nil
}

// repoConfig is .git/config: a non-bare repository whose origin is url,
// tracking branch, with symbolic links read as the files holding their
// target that Checkout writes.
func repoConfig(branch, url string) []byte {
	cfg := formatcfg.New()
	core := cfg.Section("core")
	core.AddOption("repositoryformatversion", "0")
	core.AddOption("filemode", "true")
	core.AddOption("bare", "false")
	core.AddOption("logallrefupdates", "true")
	core.AddOption("symlinks", "false")
	origin := cfg.Section("remote").Subsection("origin")
	origin.AddOption("url", url)
	origin.AddOption("fetch", fmt.Sprintf("+%s:%s", plumbing.NewBranchReferenceName(branch), plumbing.NewRemoteReferenceName("origin", branch)))
	b := cfg.Section("branch").Subsection(branch)
	b.AddOption("remote", "origin")
	b.AddOption("merge", plumbing.NewBranchReferenceName(branch).String())
	var buf bytes.Buffer
	_ = formatcfg.NewEncoder(&buf).Encode(cfg) // a bytes.Buffer does not fail
	return buf.Bytes()
}

// maxMetadataMessage is how much of the message metadata.json holds, as
// git-resource cuts it (head -c 10240).
const maxMetadataMessage = 10240

// authorDateLayout is git's %ai and %ci.
const authorDateLayout = "2006-01-02 15:04:05 -0700"

// WriteResourceFiles writes concourse/git-resource's files about Head in
// root's .git/: ref and commit (the SHA), short_ref (7 hex), commit_message
// (the raw message), committer (the author's email) and committer_name (the
// author's name: git-resource writes %ae and %an there), author,
// author_date and committer_date (%ai, %ci), branch, tags (comma-separated),
// and metadata.json, git-resource's metadata of the get. Byte for byte as
// git-resource's assets/in writes them: some end in a newline (echo or jq
// -r there), some do not (git log --format=format:).
func (s *Snapshot) WriteResourceFiles(root *os.Root, co Checkout) error {
	c := s.Head
	sha := c.Hash.String()
	tags := strings.Join(co.Tags, ",")
	nl := func(v string) []byte {
		if v == "" {
			return nil
		}
		return []byte(v + "\n")
	}
	type field struct {
		Name  string `json:"name"`
		Value string `json:"value"`
		Type  string `json:"type,omitempty"`
	}
	meta := []field{
		{"commit", sha, ""},
		{"author", c.Author.Name, ""},
		{"author_date", c.Author.When.Format(authorDateLayout), "time"},
		{"committer", c.Committer.Name, ""},
		{"committer_date", c.Committer.When.Format(authorDateLayout), "time"},
		{"branch", s.branch, ""},
	}
	if tags != "" {
		meta = append(meta, field{"tags", tags, ""})
	}
	message := c.Message
	if len(message) > maxMetadataMessage {
		message = message[:maxMetadataMessage]
	}
	meta = append(meta, field{"message", strings.ToValidUTF8(message, ""), "message"})
	var metaJSON bytes.Buffer
	enc := json.NewEncoder(&metaJSON)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(meta) // strings only: it does not fail
	files := map[string][]byte{
		"ref":            nl(sha),
		"commit":         nl(sha),
		"short_ref":      []byte(sha[:7]),
		"commit_message": []byte(c.Message),
		"committer":      []byte(c.Author.Email),
		"committer_name": []byte(c.Author.Name),
		"author":         nl(c.Author.Name),
		"author_date":    nl(c.Author.When.Format(authorDateLayout)),
		"committer_date": nl(c.Committer.When.Format(authorDateLayout)),
		"branch":         nl(s.branch),
		"tags":           nl(tags),
		"metadata.json":  metaJSON.Bytes(),
	}
	return writeGitFiles(root, files)
}
