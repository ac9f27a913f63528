package gitrepo

import "github.com/go-git/go-git/v5/plumbing"

// HistoryCommits is how many commits the packs of h hold, duplicates
// included: a deepening that sends again the commits fetched counts them
// twice.
func HistoryCommits(h *History) (int, error) {
	n := 0
	for _, p := range h.packs {
		for _, o := range p.objs {
			typ, _, _, err := p.object(o.hash)
			if err != nil {
				return 0, err
			}
			if typ == plumbing.CommitObject {
				n++
			}
		}
	}
	return n, nil
}
