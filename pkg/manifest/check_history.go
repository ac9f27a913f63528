package manifest

import (
	"regexp"

	"github.com/gitops-resource/gitops-resource/pkg/gitrepo"
	"github.com/gitops-resource/gitops-resource/pkg/resource"
)

// ciSkip is git-resource's rule for the commits its check leaves out: a
// message with a line matching `git rev-list --grep '\[ci\sskip\]' --grep
// '\[skip\sci\]'` (one whitespace character between the words; case
// matters).
var ciSkip = regexp.MustCompile(`\[(ci[ \t\v\f\r]skip|skip[ \t\v\f\r]ci)\]`)

// skips reports whether check leaves the commit with this message out: it
// says [ci skip] or [skip ci] (unless disable_ci_skip), or it is one of
// ours (with ignore_own_commits).
func (s *Source) skips(message string) bool {
	return !s.DisableCISkip && ciSkip.MatchString(message) ||
		s.IgnoreOwnCommits && gitrepo.HasTrailer(message, resource.TrailerKey, KindName)
}

// historyPaths is a pathSet as a gitrepo.Pathspec: a dir may hold a
// tracked file when it lies under one of the set's Prefixes or on the way
// to one.
type historyPaths struct {
	pathSet
	prefixes []string
}

func (s pathSet) history() historyPaths { return historyPaths{s, s.Prefixes()} }

// MayHold implements gitrepo.Pathspec.
func (p historyPaths) MayHold(dir string) bool {
	for _, prefix := range p.prefixes {
		if underPath(dir, prefix) || underPath(prefix, dir) {
			return true
		}
	}
	return false
}
