// Package gitrepo talks to git remotes with go-git: authentication and host
// key pinning, cheap reads of a branch tip, shallow snapshots, and commits
// pushed with a bounded retry loop that re-applies the caller's edit on the
// fresh tip and then proves the push landed.
//
// It is shared by the kinds semver and manifest, and so never imports a kind
// nor pkg/app; the retry policy itself is pkg/retry's.
package gitrepo
