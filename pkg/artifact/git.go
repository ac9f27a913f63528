package artifact

import (
	"fmt"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

// gitOrigin is what a git get dir says about where the packed files came
// from: Flux's source and revision, and the commit's time.
type gitOrigin struct {
	Dir      string // relative to the build dir
	Source   string // origin's URL, without credentials
	Revision string // <branch>@sha1:<sha>, or sha1:<sha> with no branch
	Created  time.Time
}

// findGit looks for a git get dir at rel or above it, up to the build dir
// (never above): the first dir holding a .git dir that is not a symlink.
// It returns nil when there is none.
func findGit(root *os.Root, buildDir, rel string) (*gitOrigin, error) {
	for d := filepath.Clean(rel); ; d = filepath.Dir(d) {
		if info, err := root.Lstat(filepath.Join(d, ".git")); err == nil && info.IsDir() {
			return readGit(buildDir, d)
		}
		if d == "." || d == string(filepath.Separator) {
			return nil, nil
		}
	}
}

func readGit(buildDir, rel string) (*gitOrigin, error) {
	repo, err := git.PlainOpen(filepath.Join(buildDir, rel))
	if err != nil {
		return nil, fmt.Errorf("read the git dir %s: %w", filepath.Join(rel, ".git"), err)
	}
	head, err := repo.Head()
	if err != nil {
		return nil, fmt.Errorf("read HEAD of the git dir %s: %w", rel, err)
	}
	commit, err := repo.CommitObject(head.Hash())
	if err != nil {
		return nil, fmt.Errorf("read the commit %s of the git dir %s: %w", head.Hash(), rel, err)
	}
	o := &gitOrigin{Dir: rel, Created: commit.Committer.When.UTC()}
	if remote, err := repo.Remote("origin"); err == nil && len(remote.Config().URLs) > 0 {
		o.Source = withoutUserinfo(remote.Config().URLs[0])
	}
	o.Revision = "sha1:" + head.Hash().String()
	if b := branchOf(repo, head); b != "" {
		o.Revision = b + "@" + o.Revision
	}
	return o, nil
}

// branchOf names the branch of the checkout: HEAD's branch, or, when HEAD
// is detached (a git-resource get checks out the commit), the one local
// branch there is.
func branchOf(repo *git.Repository, head *plumbing.Reference) string {
	if head.Name().IsBranch() {
		return head.Name().Short()
	}
	refs, err := repo.Branches()
	if err != nil {
		return ""
	}
	var names []string
	_ = refs.ForEach(func(r *plumbing.Reference) error {
		names = append(names, r.Name().Short())
		return nil
	})
	if len(names) == 1 {
		return names[0]
	}
	return ""
}

// withoutUserinfo drops credentials from a URL: a git get's remote may
// carry them, and the source annotation is public.
func withoutUserinfo(raw string) string {
	u, err := neturl.Parse(raw)
	if err != nil || u.User == nil || u.Scheme == "" {
		return raw
	}
	if u.Scheme == "ssh" {
		u.User = neturl.User(u.User.Username())
		return u.String()
	}
	u.User = nil
	return strings.TrimSpace(u.String())
}
