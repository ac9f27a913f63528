package health

import "strings"

// RevisionID is the commit SHA or digest inside a revision as the agents
// write it: "main@sha1:<sha>", "sha1:<sha>", "v1@sha256:<digest>", or bare.
func RevisionID(rev string) string {
	if i := strings.LastIndex(rev, "@"); i >= 0 {
		rev = rev[i+1:]
	}
	if _, after, ok := strings.Cut(rev, ":"); ok {
		rev = after
	}
	return strings.ToLower(strings.TrimSpace(rev))
}

// SameRevision compares two revisions by their SHA or digest; a short SHA
// (7+ characters) matches the full one.
func SameRevision(a, b string) bool {
	x, y := RevisionID(a), RevisionID(b)
	if x == "" || y == "" {
		return false
	}
	if len(x) > len(y) {
		x, y = y, x
	}
	return len(x) >= 7 && strings.HasPrefix(y, x)
}
