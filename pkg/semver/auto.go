package semver

import (
	"regexp"
	"strings"
)

// header matches a Conventional Commits subject: type(scope)!: description.
var header = regexp.MustCompile(`^([A-Za-z]+)(\([^)]*\))?(!)?: \S`)

// conventionalLevel derives the bump from commit messages: a breaking
// change (`!` or a BREAKING CHANGE footer) is major, a feat minor, anything
// else patch. A put that asks for a bump always gets a new version, so
// commits with no conventional type still give patch.
func conventionalLevel(messages []string) string {
	level := "patch"
	for _, m := range messages {
		subject, body, _ := strings.Cut(m, "\n")
		g := header.FindStringSubmatch(subject)
		if (g != nil && g[3] == "!") || breaking(body) {
			return "major"
		}
		if g != nil && strings.EqualFold(g[1], "feat") {
			level = "minor"
		}
	}
	return level
}

func breaking(body string) bool {
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "BREAKING CHANGE:") || strings.HasPrefix(line, "BREAKING-CHANGE:") {
			return true
		}
	}
	return false
}
