package semver

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/gitops-resource/gitops-resource/pkg/gitrepo"
)

// historyDepth is the history a check with an older version fetches
// first. Concourse asks from the last version it saw, a check interval
// ago, so the version is almost always within the last few commits of the
// branch, and 100 commits of a version branch are a few KiB; further back
// (fly check-resource --from an old version), gitrepo.History fetches
// deeper, 3 times each time, to disk.
const historyDepth = 100

// maxHistoryFile bounds what is read of an old version file: a version is a
// few bytes, and an old file that holds more is no version.
const maxHistoryFile = 4 << 10

// fileHistory lists the versions file held on the first-parent line of
// h's branch from the version from on, oldest first, ending with the one
// at the tip. It is nil when the file never held from on that line.
// Consecutive commits holding the same number count once; a commit where
// the file is missing, or holds no version, adds nothing.
//
// The walk goes from the tip down first parents and stops at the newest
// commit holding from. It reads the file only at the commits that changed
// it (HistoryCommit.Changed, which reads the trees along the file's path
// and no other), each the first to hold what it holds.
func fileHistory(ctx context.Context, h *gitrepo.History, file string, from *semver.Version) ([]*semver.Version, error) {
	var newestFirst []*semver.Version
	found := false
	err := h.Walk(ctx, func(c *gitrepo.HistoryCommit) error {
		if changed, err := c.Changed(onePath(file)); err != nil || !changed {
			return err
		}
		data, ok, err := c.ReadFile(file, maxHistoryFile)
		if errors.Is(err, gitrepo.ErrFileTooLarge) || !ok {
			return nil // gone at this commit, or too large to be a version
		}
		if err != nil {
			return err
		}
		v, err := parseFileNumber(string(data))
		if err != nil {
			return nil // an old content that is no version is passed over
		}
		if len(newestFirst) == 0 || newestFirst[len(newestFirst)-1].String() != v.String() {
			newestFirst = append(newestFirst, v)
		}
		if v.String() == from.String() {
			found = true
			return gitrepo.ErrStop
		}
		return nil
	})
	if err != nil || !found {
		return nil, err
	}
	slices.Reverse(newestFirst)
	return newestFirst, nil
}

// onePath is the gitrepo.Pathspec of one file.
type onePath string

func (p onePath) Match(file string) bool  { return file == string(p) }
func (p onePath) MayHold(dir string) bool { return strings.HasPrefix(string(p), dir+"/") }
