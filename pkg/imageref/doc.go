// Package imageref parses, normalises and matches container image references
// while keeping the spelling an author wrote, so that a rewrite changes only
// the part that has to change.
//
// It imports no other package of this module.
package imageref
