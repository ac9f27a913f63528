package gitrepo

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/go-git/go-git/v5/plumbing"
)

// ValidPath reports whether git would accept p as the path of a file in a
// tree: the rules of git's verify_path with core.protectNTFS and
// core.protectHFS on (as git checks pushes with receive.fsckObjects), and
// stricter where that is free. p is relative and slash-separated; it has no
// empty, "." or ".." component and no backslash or NUL byte; and no
// component names git's own directory in any spelling a file system would
// read as ".git": any case, the NTFS forms (".git" followed by dots or
// spaces, or by ":" and a stream name, and the 8.3 short name "git~1"), and
// ".git" with the Unicode code points HFS+ ignores.
func ValidPath(p string) error {
	var reason string
	switch {
	case p == "":
		reason = "it is empty"
	case strings.HasPrefix(p, "/"):
		reason = "it is absolute: write it relative to the repository root"
	case strings.IndexByte(p, 0) >= 0:
		reason = "it contains a NUL byte"
	case strings.IndexByte(p, '\\') >= 0:
		reason = "it contains a backslash: separate directories with /"
	default:
		for _, c := range strings.Split(p, "/") {
			if reason = componentProblem(c); reason != "" {
				break
			}
		}
	}
	if reason != "" {
		return fmt.Errorf("%q is not a path git accepts: %s", p, reason)
	}
	return nil
}

// componentProblem says why git refuses one component of a path, or "".
func componentProblem(c string) string {
	switch {
	case c == "":
		return "it has an empty component (// or a / at the end)"
	case c == "." || c == "..":
		return fmt.Sprintf("it has a %q component", c)
	case isNTFSDotGit(c) || isHFSDotGit(c):
		return fmt.Sprintf("its component %q is read as .git, git's own directory", c)
	}
	return ""
}

// isNTFSDotGit is git's is_ntfs_dotgit for one component: ".git" or its
// short name "git~1", in any case, followed only by dots and spaces (which
// NTFS drops) up to the end or a ":" (an alternate data stream).
func isNTFSDotGit(c string) bool {
	rest, ok := cutPrefixFold(c, ".git")
	if !ok {
		if rest, ok = cutPrefixFold(c, "git~1"); !ok {
			return false
		}
	}
	rest, _, _ = strings.Cut(rest, ":")
	return strings.Trim(rest, ". ") == ""
}

// cutPrefixFold is strings.CutPrefix for an ASCII prefix, in any case.
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}

// isHFSDotGit is git's is_hfs_dotgit for one component: ".git" in any
// (ASCII) case once the code points HFS+ ignores are dropped. Malformed UTF-8
// cannot be ".git".
func isHFSDotGit(c string) bool {
	var kept strings.Builder
	for _, r := range c {
		switch {
		case hfsIgnorable(r):
		case r == utf8.RuneError, r >= utf8.RuneSelf:
			return false
		default:
			kept.WriteRune(r)
		}
	}
	return strings.EqualFold(kept.String(), ".git")
}

// hfsIgnorable lists the code points HFS+ leaves out of file names when it
// compares them (git's next_hfs_char).
func hfsIgnorable(r rune) bool {
	switch {
	case r >= 0x200c && r <= 0x200f, // zero-width (non-)joiner, LTR/RTL marks
		r >= 0x202a && r <= 0x202e, // directional embeddings and overrides
		r >= 0x206a && r <= 0x206f, // deprecated format characters
		r == 0xfeff:                // zero-width no-break space
		return true
	}
	return false
}

// ValidBranch reports whether git accepts name as a branch name, as
// `git check-ref-format --branch` does.
func ValidBranch(name string) error {
	return validRefName(plumbing.NewBranchReferenceName(name), name, "branch")
}

// ValidTag reports whether git accepts name as a tag name.
func ValidTag(name string) error {
	return validRefName(plumbing.NewTagReferenceName(name), name, "tag")
}

// validRefName applies git's refname rules (go-git's
// ReferenceName.Validate, which also refuses a leading "-"), and the
// refusal of "HEAD" that git adds for branches and tags.
func validRefName(ref plumbing.ReferenceName, name, what string) error {
	if ref.Validate() != nil || name == "HEAD" {
		return fmt.Errorf(`%q is not a valid %s name: git refuses spaces, control characters, ~ ^ : ? * [ \, "..", "@{", "@" or "HEAD" alone, a leading "-", a leading, trailing or doubled "/", a trailing ".", and a component that starts with "." or ends with ".lock"`, name, what)
	}
	return nil
}
