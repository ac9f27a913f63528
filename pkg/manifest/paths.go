package manifest

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/gitops-resource/gitops-resource/pkg/resource"
)

// pathSet says which repository files a resource tracks. Its patterns are
// git pathspecs, read as `git log -- <paths> :!<ignore_paths>` reads them
// (what git-resource runs): a file is tracked when an include pattern
// matches it (every file when no include pattern is given) and no exclude
// pattern does. An include written with exclude magic (":!docs") excludes.
//
// Without magic a pattern matches a file when it equals the file or one of
// its parent dirs ("apps" covers apps/web/deploy.yaml), or when it holds
// wildcards and matches the whole file path as a glob in which "*" also
// matches "/" ("apps/*.yaml" matches apps/web/deploy.yaml; "**" is "*").
// The magic git knows is read too: ":(glob)" (then "*" stops at "/" and
// "**/" spans dirs), ":(literal)", ":(icase)", ":(exclude)" (":!", ":^")
// and ":(top)" (":/"), which is the repository root every pattern is
// relative to anyway. ":(attr:…)" is refused: there is no checkout to read
// .gitattributes from.
type pathSet struct {
	include, exclude []string
}

// Match reports whether the file name (a slash-separated path from the
// repository root) is tracked.
func (s pathSet) Match(name string) bool {
	included, anyInclude := false, false
	for _, p := range s.include {
		ps := parsePathspec(p)
		if ps.exclude {
			if ps.match(name) {
				return false
			}
			continue
		}
		anyInclude = true
		included = included || ps.match(name)
	}
	if anyInclude && !included {
		return false
	}
	for _, p := range s.exclude {
		if parsePathspec(p).match(name) {
			return false
		}
	}
	return true
}

// Limited reports whether the set is narrower than the whole repository.
func (s pathSet) Limited() bool { return len(s.include) > 0 || len(s.exclude) > 0 }

// Prefixes returns the fixed leading path of each include pattern: every
// file Match accepts is that path or lies under it, so a walk of the tree
// (or of a commit's changes) need not look anywhere else. It is the pattern
// itself when it holds no wildcard ("apps/web"), else the dir before its
// first wildcard ("apps/**/deploy.yaml" gives "apps"); "" is the whole
// repository (no include pattern, a wildcard in the first path element,
// or :(icase)). Paths covered by another are left out; the rest are sorted.
// Exclusions are not applied: Match still decides file by file.
func (s pathSet) Prefixes() []string {
	var out []string
	for _, p := range s.include {
		if ps := parsePathspec(p); !ps.exclude {
			out = append(out, ps.prefix())
		}
	}
	if len(out) == 0 {
		return []string{""}
	}
	sort.Strings(out)
	kept := out[:0]
	for _, p := range out {
		if len(kept) > 0 && underPath(p, kept[len(kept)-1]) {
			continue
		}
		kept = append(kept, p)
	}
	return kept
}

// underPath reports whether name is dir or lies under it ("" is the root).
func underPath(name, dir string) bool {
	return dir == "" || name == dir || strings.HasPrefix(name, dir+"/")
}

// pathspec is one parsed pattern: its magic and its path, normalised as
// git normalises it ("./a//b/." is "a/b/"; "." is "", every file).
type pathspec struct {
	body                          string
	glob, literal, icase, exclude bool
	err                           error
}

// pathspecMagicChars are the characters git reads as short magic after a
// leading ":"; of them only "/" (top) and "!" (exclude, also "^") mean
// something, the others are refused as git refuses them.
const pathspecMagicChars = "!\"#%&',-/;<=>@_`~"

// parsePathspec reads a pattern's magic as git's parse_element_magic does.
// A pattern git refuses has err set (validatePathspec reports it) and
// matches nothing.
func parsePathspec(p string) pathspec {
	var ps pathspec
	body := p
	switch {
	case strings.HasPrefix(p, ":("):
		end := strings.IndexByte(p, ')')
		if end < 0 {
			ps.err = fmt.Errorf("missing ')' at the end of the pathspec magic in %q", p)
			return ps
		}
		for _, m := range strings.Split(p[2:end], ",") {
			switch name, _, _ := strings.Cut(m, ":"); name {
			case "top", "":
			case "glob":
				ps.glob = true
			case "literal":
				ps.literal = true
			case "icase":
				ps.icase = true
			case "exclude":
				ps.exclude = true
			case "attr":
				ps.err = fmt.Errorf("%q: the attr magic is not supported (there is no checkout to read .gitattributes from): list the paths instead", p)
				return ps
			default:
				ps.err = fmt.Errorf("invalid pathspec magic %q in %q: git knows top, glob, literal, icase and exclude", m, p)
				return ps
			}
		}
		if ps.glob && ps.literal {
			ps.err = fmt.Errorf("%q: the literal and glob magic are incompatible", p)
			return ps
		}
		body = p[end+1:]
	case strings.HasPrefix(p, ":"):
		i := 1
		for ; i < len(p) && p[i] != ':'; i++ {
			switch c := p[i]; {
			case c == '!' || c == '^':
				ps.exclude = true
			case c == '/':
			case strings.IndexByte(pathspecMagicChars, c) >= 0:
				ps.err = fmt.Errorf("unimplemented pathspec magic %q in %q: only \":/\" and \":!\" (or \":^\") are short magic", c, p)
				return ps
			default:
				goto done
			}
		}
	done:
		if i < len(p) && p[i] == ':' {
			i++
		}
		body = p[i:]
	}
	switch clean := path.Clean(body); {
	case strings.HasPrefix(body, "/"):
		ps.err = fmt.Errorf("%q must be relative to the repository root", p)
	case clean == ".." || strings.HasPrefix(clean, "../"):
		ps.err = fmt.Errorf("%q leaves the repository", p)
	}
	ps.body = normalizePathspec(body)
	return ps
}

// normalizePathspec cleans a pattern's path as git does, keeping a
// trailing "/" (a dir only): "./apps//web/." is "apps/web/", "." is "".
func normalizePathspec(body string) string {
	clean := path.Clean(body)
	if clean == "." || clean == "/" {
		return ""
	}
	if strings.HasSuffix(body, "/") || strings.HasSuffix(body, "/.") || strings.HasSuffix(body, "/..") {
		clean += "/"
	}
	return clean
}

// validatePathspec checks a paths entry before any network I/O: magic git
// accepts, a path relative to the repository root and inside it.
func validatePathspec(field, p string) error {
	if err := validateRepoPath(field, p); err != nil {
		return err
	}
	if err := parsePathspec(p).err; err != nil {
		return resource.ConfigErrorf("%s: %v", field, err)
	}
	return nil
}

// nowildcard is the length of the pattern's leading part without glob
// specials (all of it under :(literal)), as git's simple_length.
func (ps pathspec) nowildcard() int {
	if ps.literal {
		return len(ps.body)
	}
	if i := strings.IndexAny(ps.body, `*?[\`); i >= 0 {
		return i
	}
	return len(ps.body)
}

// prefix is the path every file the pattern matches is or lies under.
func (ps pathspec) prefix() string {
	if ps.err != nil || ps.icase {
		return ""
	}
	n := ps.nowildcard()
	if n == len(ps.body) {
		return strings.TrimSuffix(ps.body, "/")
	}
	if i := strings.LastIndexByte(ps.body[:n], '/'); i >= 0 {
		return ps.body[:i]
	}
	return ""
}

// match reports whether the pattern matches file name, as git's
// match_pathspec_item: the pattern as a literal path (the file, or a dir
// above it), else, when it holds wildcards, as a glob over the whole path.
func (ps pathspec) match(name string) bool {
	if ps.err != nil {
		return false
	}
	m := ps.body
	if m == "" {
		return true
	}
	if len(m) <= len(name) && ps.equal(m, name[:len(m)]) &&
		(len(m) == len(name) || m[len(m)-1] == '/' || name[len(m)] == '/') {
		return true
	}
	n := ps.nowildcard()
	if n == len(m) || len(name) < n || !ps.equal(m[:n], name[:n]) {
		return false
	}
	return wildmatch(m[n:], name[n:], ps.glob, ps.icase)
}

// equal compares a pattern's literal part with a path's, case-insensitively
// (ASCII, as git) under :(icase).
func (ps pathspec) equal(a, b string) bool {
	if ps.icase {
		return asciiFoldEqual(a, b)
	}
	return a == b
}

// asciiFoldEqual compares a and b folding ASCII letters only, as git does.
func asciiFoldEqual(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// wildmatch reports whether pattern matches all of text, with git's
// wildmatch rules: "?" is one character, "[...]" a class ("!" or "^"
// negates; ranges; [:alpha:] and the other POSIX classes), "\" quotes the
// next character. Without pathname (git's default for pathspecs) "*" and
// "**" match any run of characters, "/" included. With pathname
// (:(glob)) "*", "?" and classes never match "/", and "**" is special
// only as a whole path element: "**/" matches zero or more dirs, a
// trailing "/**" everything below. icase folds ASCII letters.
//
// It keeps the set of text positions the pattern read so far can end at
// (an NFA walk), so its cost is len(pattern)·len(text) whatever the pattern.
func wildmatch(pattern, text string, pathname, icase bool) bool {
	var buf [2][257]bool
	var cur, next []bool
	if len(text) < len(buf[0]) {
		cur, next = buf[0][:len(text)+1], buf[1][:len(text)+1]
	} else {
		cur, next = make([]bool, len(text)+1), make([]bool, len(text)+1)
	}
	cur[0] = true
	for p := 0; p < len(pattern); {
		clear(next)
		switch c := pattern[p]; c {
		case '*':
			q := p + 1
			for q < len(pattern) && pattern[q] == '*' {
				q++
			}
			double := q-p > 1
			segment := (p == 0 || pattern[p-1] == '/') && (q == len(pattern) || pattern[q] == '/' || strings.HasPrefix(pattern[q:], `\/`))
			switch {
			case !pathname || double && segment && (q == len(pattern) || pattern[q] != '/'):
				// Any run of characters.
				reached := false
				for i := range cur {
					reached = reached || cur[i]
					next[i] = reached
				}
			case double && segment:
				// "**/": nothing, or any run of characters ending in "/".
				reached := false
				for i := range cur {
					next[i] = cur[i] || reached && text[i-1] == '/'
					reached = reached || cur[i]
				}
				q++ // the "/" is read
			default:
				// A run of characters without "/".
				for i := range cur {
					next[i] = cur[i] || i > 0 && next[i-1] && text[i-1] != '/'
				}
			}
			p = q
		case '[':
			end, _, ok := readClass(pattern, p, 0, icase)
			if !ok {
				return false // git gives up on a class it cannot read: nothing matches
			}
			for i := 0; i < len(text); i++ {
				if cur[i] && !(pathname && text[i] == '/') {
					_, next[i+1], _ = readClass(pattern, p, text[i], icase)
				}
			}
			p = end + 1
		default:
			want, q := c, p+1
			if c == '\\' {
				if q == len(pattern) {
					return false // a trailing "\" matches nothing
				}
				want, q = pattern[q], q+1
			}
			for i := 0; i < len(text); i++ {
				if !cur[i] {
					continue
				}
				switch t := text[i]; {
				case c == '?':
					next[i+1] = !(pathname && t == '/')
				case icase:
					next[i+1] = lower(t) == lower(want)
				default:
					next[i+1] = t == want
				}
			}
			p = q
		}
		if !slices.Contains(next, true) {
			return false
		}
		cur, next = next, cur
	}
	return cur[len(text)]
}

// readClass reads the class opened at pattern[open] as git's wildmatch
// reads it, and reports whether t is in it: end is the index of its "]";
// ok is false when git gives up on it (no "]", an unknown [:name:]). A "]"
// right after "[" (or "[!") is a member; "\" quotes; under icase t is
// folded to lower case and the class's own letters are not, except in
// ranges and [:upper:] (git's quirk, kept).
func readClass(pattern string, open int, t byte, icase bool) (end int, in, ok bool) {
	at := func(i int) byte {
		if i < len(pattern) {
			return pattern[i]
		}
		return 0
	}
	if icase {
		t = lower(t)
	}
	p := open + 1
	c := at(p)
	negated := c == '!' || c == '^'
	if negated {
		p++
		c = at(p)
	}
	var prev byte
	for {
		if c == 0 {
			return 0, false, false
		}
		switch {
		case c == '\\':
			p++
			if c = at(p); c == 0 {
				return 0, false, false
			}
			in = in || t == c
		case c == '-' && prev != 0 && at(p+1) != 0 && at(p+1) != ']':
			p++
			hi := at(p)
			if hi == '\\' {
				p++
				if hi = at(p); hi == 0 {
					return 0, false, false
				}
			}
			up := t
			if icase && 'a' <= t && t <= 'z' {
				up = t - 'a' + 'A'
			}
			in = in || prev <= t && t <= hi || prev <= up && up <= hi
			c = 0
		case c == '[' && at(p+1) == ':':
			q := p + 2
			for at(q) != 0 && at(q) != ']' {
				q++
			}
			if at(q) == 0 {
				return 0, false, false
			}
			if q-(p+2) < 1 || pattern[q-1] != ':' {
				in = in || t == '[' // no ":]": the "[" is a member, the rest read on
				break
			}
			member, known := posixClass(pattern[p+2:q-1], t, icase)
			if !known {
				return 0, false, false
			}
			in = in || member
			p, c = q, 0
		default:
			in = in || t == c
		}
		prev = c
		p++
		if c = at(p); c == ']' {
			return p, in != negated, true
		}
	}
}

// posixClass reports whether t is in the POSIX class name; ok is false
// for a name git does not know.
func posixClass(name string, t byte, icase bool) (in, ok bool) {
	isUpper, isLower, isDigit := 'A' <= t && t <= 'Z', 'a' <= t && t <= 'z', '0' <= t && t <= '9'
	isAlpha := isUpper || isLower
	isPunct := t > ' ' && t < 0x7f && !isAlpha && !isDigit
	switch name {
	case "alnum":
		return isAlpha || isDigit, true
	case "alpha":
		return isAlpha, true
	case "blank":
		return t == ' ' || t == '\t', true
	case "cntrl":
		return t < ' ' || t == 0x7f, true
	case "digit":
		return isDigit, true
	case "graph":
		return t > ' ' && t < 0x7f, true
	case "lower":
		return isLower, true
	case "print":
		return t >= ' ' && t < 0x7f, true
	case "punct":
		return isPunct, true
	case "space":
		return t == ' ' || '\t' <= t && t <= '\r', true
	case "upper":
		return isUpper || icase && isLower, true
	case "xdigit":
		return isDigit || 'a' <= t && t <= 'f' || 'A' <= t && t <= 'F', true
	}
	return false, false
}

// isYAML reports whether a file is one the edits read.
func isYAML(name string) bool {
	switch path.Ext(name) {
	case ".yaml", ".yml":
		return true
	}
	return path.Base(name) == "Kustomization"
}
