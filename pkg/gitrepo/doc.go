// Package gitrepo talks to git remotes with go-git: authentication and host
// key pinning, cheap reads of a branch tip, shallow snapshots, and commits
// pushed with a bounded retry loop that re-applies the caller's edit on the
// fresh tip and then proves the push landed.
//
// A History (history*.go) answers questions about a branch's first-parent
// line that may reach far back (which commits changed these paths, what a
// file held at each): it is fetched to a temporary dir on disk, a bounded
// number of commits, then deeper and deeper only when a walk needs more, and
// reads only the trees along the paths asked about. A checkout
// (Snapshot.CheckoutRepository, worktree.go) writes a snapshot's tree with a
// shallow .git beside it, whose objects are the packs as fetched
// (ForCheckout), and git-resource's files in .git: what a get step leaves.
//
// It is shared by the kinds semver and manifest, and so never imports a kind
// nor pkg/app; the retry policy itself is pkg/retry's.
package gitrepo
