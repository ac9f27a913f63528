package semver

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/gitops-resource/gitops-resource/pkg/gitrepo"
	"github.com/gitops-resource/gitops-resource/pkg/resource"
)

// nextFunc computes the version to write from the current one (nil when
// there is none yet) and the messages of the commits since it.
type nextFunc func(current *semver.Version, messages []string) *semver.Version

// outcome is what a write did.
type outcome struct {
	number, previous *semver.Version
	commit           string
	pushed           bool
	// signedWith is the fingerprint of the key that signed the push, or "".
	signedWith string
}

// store is where a driver keeps versions.
type store interface {
	// versions lists the versions there are, oldest first.
	versions(ctx context.Context) ([]*semver.Version, error)
	// write computes the next version on the freshest state and pushes it,
	// again on a newer state when another writer got there first.
	write(ctx context.Context, next nextFunc, history bool) (outcome, error)
}

func (s *Source) store(client *gitrepo.Client, in resource.Input, refCommit string) store {
	if s.Driver == driverTags {
		return &tagStore{src: s, client: client, env: in.Env, refCommit: refCommit, log: in.Log}
	}
	return &fileStore{src: s, client: client, env: in.Env}
}

// trailer marks commits and tags made by this kind.
func trailers(env resource.Env) []resource.Trailer {
	return append([]resource.Trailer{{Key: resource.TrailerKey, Value: "semver"}}, env.Trailers()...)
}

// depthFor is the fetch depth: the tip alone, or all history when the bump
// reads the commits since the last version.
func depthFor(history bool) int {
	if history {
		return 0
	}
	return 1
}

type fileStore struct {
	src    *Source
	client *gitrepo.Client
	env    resource.Env
}

func (f *fileStore) versions(ctx context.Context) ([]*semver.Version, error) {
	v, err := f.current(ctx)
	if err != nil || v == nil {
		return nil, err
	}
	return []*semver.Version{v}, nil
}

// current fetches the branch tip (depth 1) and reads the version there:
// nil when there is none yet.
func (f *fileStore) current(ctx context.Context) (*semver.Version, error) {
	snap, err := f.client.Snapshot(ctx, f.src.Branch, 1)
	if err != nil {
		return nil, err
	}
	return f.currentOf(snap, nil)
}

// currentOf reads the version at the tip of snap, a depth-1 snapshot of the
// branch. The cache, when given, records the tip and what it holds.
func (f *fileStore) currentOf(snap *gitrepo.Snapshot, cache *checkCache) (*semver.Version, error) {
	v, found, err := f.read(snap)
	if err != nil {
		return nil, err
	}
	if cache != nil {
		e := cacheEntry{Tip: snap.HeadHash().String()}
		if found {
			e.Number = v.String()
		}
		cache.store(e)
	}
	return v, nil
}

func (f *fileStore) read(snap *gitrepo.Snapshot) (*semver.Version, bool, error) {
	data, found, err := snap.ReadFile(f.src.File)
	if err != nil || !found {
		return nil, false, err
	}
	v, err := parseFileNumber(string(data))
	if err != nil {
		return nil, false, resource.ConfigErrorf("%s on branch %s of %s: %v", f.src.File, f.src.Branch, f.client.URL(), err)
	}
	return v, true, nil
}

func (f *fileStore) write(ctx context.Context, next nextFunc, history bool) (outcome, error) {
	var out outcome
	res, err := f.client.Update(ctx, f.src.Branch, depthFor(history), func(snap *gitrepo.Snapshot) error {
		current, found, err := f.read(snap)
		if err != nil {
			return err
		}
		var messages []string
		if history {
			messages, err = f.messagesSince(snap)
			if err != nil {
				return err
			}
		}
		base := current
		if !found {
			base = nil
		}
		out.previous, out.number = base, next(base, messages)
		if found && out.number.Equal(current) && out.number.Original() == current.Original() {
			return nil
		}
		snap.WriteFile(f.src.File, []byte(out.number.String()))
		msg, _ := f.src.commitMessage(out.number.String(), f.src.File) // validated with the source
		author, _ := f.src.Author()
		_, err = snap.Commit(gitrepo.CommitMessage(msg, trailers(f.env)), author)
		return err
	})
	if err != nil {
		return out, err
	}
	out.commit, out.pushed, out.signedWith = res.Commit.String(), res.Pushed, res.SignedWith
	return out, nil
}

// messagesSince collects the messages of commits after the last one that
// changed the version file.
func (f *fileStore) messagesSince(snap *gitrepo.Snapshot) ([]string, error) {
	var messages []string
	err := snap.Log(func(c *object.Commit) error {
		if changedFile(c, f.src.File) {
			return gitrepo.ErrStop
		}
		messages = append(messages, c.Message)
		return nil
	})
	return messages, err
}

func changedFile(c *object.Commit, name string) bool {
	blob := func(c *object.Commit) plumbing.Hash {
		file, err := c.File(name)
		if err != nil {
			return plumbing.ZeroHash
		}
		return file.Hash
	}
	mine := blob(c)
	if c.NumParents() == 0 {
		return !mine.IsZero()
	}
	parent, err := c.Parent(0)
	if err != nil {
		return !mine.IsZero() // the shallow boundary: count it as the last version
	}
	return blob(parent) != mine
}

type tagStore struct {
	src       *Source
	client    *gitrepo.Client
	env       resource.Env
	refCommit string
	log       io.Writer
}

// tagged is a version tag and the commit it names.
type tagged struct {
	version *semver.Version
	commit  plumbing.Hash
}

func (t *tagStore) tags(ctx context.Context) ([]tagged, error) {
	refs, err := t.client.Refs(ctx)
	if err != nil {
		return nil, err
	}
	prefix := "refs/tags/" + *t.src.TagPrefix
	byName := map[string]*tagged{}
	for _, r := range refs {
		name := r.Name().String()
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		rest, peeled := strings.CutSuffix(strings.TrimPrefix(name, prefix), "^{}")
		v, err := semver.StrictNewVersion(rest)
		if err != nil {
			continue // not one of ours: another component's line, or not a version
		}
		tg := byName[rest]
		if tg == nil {
			tg = &tagged{version: v}
			byName[rest] = tg
		}
		if peeled || tg.commit.IsZero() {
			tg.commit = r.Hash()
		}
	}
	out := make([]tagged, 0, len(byName))
	for _, tg := range byName {
		out = append(out, *tg)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version.LessThan(out[j].version) })
	return out, nil
}

func (t *tagStore) versions(ctx context.Context) ([]*semver.Version, error) {
	tags, err := t.tags(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*semver.Version, len(tags))
	for i, tg := range tags {
		out[i] = tg.version
	}
	return out, nil
}

func (t *tagStore) write(ctx context.Context, next nextFunc, history bool) (outcome, error) {
	var out outcome
	res, err := t.client.Update(ctx, t.src.Branch, depthFor(history), func(snap *gitrepo.Snapshot) error {
		tags, err := t.tags(ctx)
		if err != nil {
			return err
		}
		var latest *tagged
		if len(tags) > 0 {
			latest = &tags[len(tags)-1]
			out.previous = latest.version
		}
		var messages []string
		if history {
			messages, err = messagesUntil(snap, latest)
			if err != nil {
				return err
			}
		}
		out.number = next(out.previous, messages)
		if latest != nil && out.number.Equal(latest.version) {
			out.commit = latest.commit.String()
			return nil
		}
		target := snap.HeadHash()
		if t.refCommit != "" {
			if target, err = t.client.FetchCommit(ctx, snap, t.refCommit); err != nil {
				return err
			}
		}
		if target.IsZero() {
			return resource.ConfigErrorf("branch %s of %s has no commits to tag", t.src.Branch, t.client.URL())
		}
		out.commit = target.String()
		name := *t.src.TagPrefix + out.number.String()
		fmt.Fprintf(t.log, "tagging %s as %s\n", target.String()[:12], name)
		author, _ := t.src.Author()
		msg, _ := t.src.commitMessage(out.number.String(), "") // validated with the source
		return snap.Tag(name, target, gitrepo.CommitMessage(msg, trailers(t.env)), author)
	})
	if err != nil {
		return out, err
	}
	out.pushed, out.signedWith = res.Pushed, res.SignedWith
	return out, nil
}

func messagesUntil(snap *gitrepo.Snapshot, latest *tagged) ([]string, error) {
	var messages []string
	err := snap.Log(func(c *object.Commit) error {
		if latest != nil && c.Hash == latest.commit {
			return gitrepo.ErrStop
		}
		messages = append(messages, c.Message)
		return nil
	})
	return messages, err
}
