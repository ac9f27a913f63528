// Package semver is the kind "semver": a version number kept in git, in a
// file on a branch (driver git, as semver-resource's git driver) or as the
// repository's tags (driver tags), bumped safely by concurrent jobs.
//
// It owns the version rules (each bump, and bump: auto from Conventional
// Commits) and the two stores; talking to git is pkg/gitrepo's.
//
// A kind imports the shared packages and pkg/resource, never another kind
// nor pkg/app: what two kinds share belongs in a shared package.
package semver
