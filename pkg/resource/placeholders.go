package resource

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// placeholder is a %name% in a commit_message.
var placeholder = regexp.MustCompile(`%[a-z_]+%`)

// Expand replaces each %name% in text with values[name], as
// semver-resource's commit_message does with %version%. A %name% that
// values lacks is an error naming it and the known ones, so a typo fails
// before anything is written; a % not around a lower-case word stays as it is.
func Expand(text string, values map[string]string) (string, error) {
	var unknown []string
	out := placeholder.ReplaceAllStringFunc(text, func(p string) string {
		v, ok := values[strings.Trim(p, "%")]
		if !ok {
			unknown = append(unknown, p)
			return p
		}
		return v
	})
	if len(unknown) > 0 {
		known := make([]string, 0, len(values))
		for k := range values {
			known = append(known, "%"+k+"%")
		}
		slices.Sort(known)
		return "", fmt.Errorf("unknown placeholder %s (known: %s)", strings.Join(unknown, ", "), strings.Join(known, ", "))
	}
	return out, nil
}
