package manifest

import (
	"path"
	"strings"
)

// pathSet says which repository files a resource tracks: every file matched
// by an include pattern (all files when there is none) and by no exclude
// pattern. A pattern matches a file when it equals the file or one of its
// parent dirs, or matches either as a path.Match glob.
type pathSet struct {
	include, exclude []string
}

func (s pathSet) Match(name string) bool {
	if len(s.include) > 0 && !matchAny(s.include, name) {
		return false
	}
	return !matchAny(s.exclude, name)
}

// Limited reports whether the set is narrower than the whole repository.
func (s pathSet) Limited() bool { return len(s.include) > 0 || len(s.exclude) > 0 }

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if matchPattern(p, name) {
			return true
		}
	}
	return false
}

func matchPattern(pattern, name string) bool {
	pattern = strings.TrimSuffix(path.Clean(pattern), "/")
	if pattern == "." {
		return true
	}
	for cand := name; cand != "." && cand != "/" && cand != ""; cand = path.Dir(cand) {
		if cand == pattern {
			return true
		}
		if ok, _ := path.Match(pattern, cand); ok {
			return true
		}
	}
	return false
}

// isYAML reports whether a file is one the edits read.
func isYAML(name string) bool {
	switch path.Ext(name) {
	case ".yaml", ".yml":
		return true
	}
	return path.Base(name) == "Kustomization"
}
