package yamledit

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Scalar is a scalar value (a mapping value or a sequence item, never a key)
// found in a file, with where its bytes are.
type Scalar struct {
	// Doc is the index of the document holding the scalar; Kind is that document's kind.
	Doc  int
	Kind string
	// Path locates the scalar in its document, e.g. spec.template.spec.containers[0].image.
	Path string
	// Value is the scalar's value as YAML reads it.
	Value string
	// Style is the yaml.v3 style: plain (0), single- or double-quoted, literal or folded.
	Style yaml.Style
	// Start and End are the byte offsets of the scalar in the file, quotes
	// included, excluding any anchor or tag before it. Both are -1 when the
	// scalar cannot be edited in place: block scalars (| and >), plain scalars
	// folded over several lines, and empty values.
	Start, End int
	// Comment is the text of a comment that follows the scalar on its line,
	// without the leading '#' and surrounding blanks, e.g. {"$imagepolicy": "ns:name"}.
	Comment string
	// InFlow reports whether the scalar is inside a flow collection ({...} or [...]).
	InFlow bool
	// Node is the yaml.v3 node; treat it as read-only.
	Node *yaml.Node
	// Via is the line of the alias (*a, or <<: *a) through which Path
	// shows the scalar, which is written at its anchor; 0 when it is
	// written at Path.
	Via int
	// Shared reports that an alias shows the scalar at another place too,
	// so replacing it changes every such place (see File.Uses).
	Shared bool
}

// Editable reports whether the scalar's bytes were located, so Replace can rewrite it.
func (s Scalar) Editable() bool { return s.Start >= 0 }

// Line returns the 1-based line of the scalar.
func (s Scalar) Line() int { return s.Node.Line }

// Scalars returns every scalar value of every document, in document order,
// as a YAML reader sees them: a scalar an alias shows is listed at each
// place that shows it, with the bytes of its anchor.
func (f *File) Scalars() []Scalar {
	if f.scalars == nil {
		f.scalars = []Scalar{}
		for i := range f.docs {
			f.walk(&f.docs[i], func(n *yaml.Node, at *place) {
				if n.Kind == yaml.ScalarNode {
					f.scalars = append(f.scalars, *f.scalarAt(n, at))
				}
			})
		}
	}
	return f.scalars
}

// Lookup returns the scalar at path in document doc.
func (f *File) Lookup(doc int, path string) (Scalar, error) {
	want, err := ParsePath(path)
	if err != nil {
		return Scalar{}, err
	}
	p := want.String()
	for _, s := range f.Scalars() {
		if s.Doc == doc && s.Path == p {
			return s, nil
		}
	}
	return Scalar{}, fmt.Errorf("%s: document %d has no scalar at %s", f.name, doc, p)
}

// scalarAt returns the scalar n at place at.
func (f *File) scalarAt(n *yaml.Node, at *place) *Scalar {
	s := &Scalar{Doc: at.doc.Index, Kind: at.doc.Kind, Path: at.path.String(), Value: n.Value, Style: n.Style &^ yaml.TaggedStyle,
		Start: -1, End: -1, InFlow: at.inFlow, Node: n, Via: aliasLine(at.via), Shared: at.shared}
	if start, end, ok := f.spanAt(n, at); ok {
		s.Start, s.End = start, end
		s.Comment = f.comment(end)
	}
	return s
}

// spanAt is span for the scalar n at place at, computed once for a scalar
// an alias shows at several places.
func (f *File) spanAt(n *yaml.Node, at *place) (start, end int, ok bool) {
	if !at.shared {
		return f.span(n, at.inFlow)
	}
	if sp, seen := f.spans[n]; seen {
		return sp[0], sp[1], sp[0] >= 0
	}
	start, end, ok = f.span(n, at.inFlow)
	if f.spans == nil {
		f.spans = map[*yaml.Node][2]int{}
	}
	if !ok {
		start, end = -1, -1
	}
	f.spans[n] = [2]int{start, end}
	return start, end, ok
}

// span locates the bytes of scalar n and checks that they read back as its value.
func (f *File) span(n *yaml.Node, inFlow bool) (start, end int, ok bool) {
	data := f.data
	p := f.offset(n.Line, n.Column)
	if p < 0 {
		return 0, 0, false
	}
	// Skip properties: an anchor (&a) and a tag (!t, !!str, !<...>) come
	// before the scalar and are where the node's position points.
	for p < len(data) && (data[p] == '&' || data[p] == '!') {
		for p < len(data) && !isBlankOrBreak(data, p) {
			p++
		}
		for p < len(data) && isBlankOrBreak(data, p) {
			p++
		}
	}
	if p >= len(data) {
		return 0, 0, false
	}
	style := n.Style &^ yaml.TaggedStyle
	switch {
	case style&yaml.DoubleQuotedStyle != 0:
		if data[p] != '"' {
			return 0, 0, false
		}
		for i := p + 1; i < len(data); i++ {
			switch data[i] {
			case '\\':
				i++
			case '"':
				return p, i + 1, f.readsAs(p, i+1, n.Value)
			}
		}
		return 0, 0, false
	case style&yaml.SingleQuotedStyle != 0:
		if data[p] != '\'' {
			return 0, 0, false
		}
		for i := p + 1; i < len(data); i++ {
			if data[i] == '\'' {
				if i+1 < len(data) && data[i+1] == '\'' {
					i++
					continue
				}
				return p, i + 1, f.readsAs(p, i+1, n.Value)
			}
		}
		return 0, 0, false
	case style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		return 0, 0, false
	}
	// Plain: up to a comment, the end of the line or, in a flow collection, an indicator.
	e := p
	for e < len(data) && breakLen(data, e) == 0 {
		c := data[e]
		if c == '#' && e > p && (data[e-1] == ' ' || data[e-1] == '\t') {
			break
		}
		if inFlow && (c == ',' || c == '[' || c == ']' || c == '{' || c == '}') {
			break
		}
		if c == ':' && (e+1 >= len(data) || isBlankOrBreak(data, e+1) || inFlow && strings.IndexByte(",[]{}", data[e+1]) >= 0) {
			break
		}
		e++
	}
	for e > p && (data[e-1] == ' ' || data[e-1] == '\t') {
		e--
	}
	if e == p || string(data[p:e]) != n.Value {
		return 0, 0, false
	}
	return p, e, true
}

// readsAs reports whether the quoted scalar data[start:end] reads as value.
func (f *File) readsAs(start, end int, value string) bool {
	raw := f.data[start+1 : end-1]
	quote := f.data[start]
	if !strings.ContainsAny(string(raw), "\r\n\u0085\u2028\u2029") {
		switch {
		case quote == '\'':
			return strings.ReplaceAll(string(raw), "''", "'") == value
		case !strings.ContainsRune(string(raw), '\\'):
			return string(raw) == value
		}
	}
	var n yaml.Node
	if err := yaml.Unmarshal(f.data[start:end], &n); err != nil {
		return false
	}
	r := docRoot(&n)
	return r != nil && r.Kind == yaml.ScalarNode && r.Value == value
}

// comment returns the text of a comment that starts after blanks at offset p on the same line.
func (f *File) comment(p int) string {
	data := f.data
	for p < len(data) && (data[p] == ' ' || data[p] == '\t') {
		p++
	}
	if p >= len(data) || data[p] != '#' {
		return ""
	}
	e := p
	for e < len(data) && breakLen(data, e) == 0 {
		e++
	}
	return strings.TrimSpace(string(data[p+1 : e]))
}

func isBlankOrBreak(data []byte, i int) bool {
	return data[i] == ' ' || data[i] == '\t' || breakLen(data, i) > 0
}

// Path is a location in a document: a list of mapping keys and sequence indexes.
type Path []PathElem

// PathElem is one step of a Path: a mapping key, or a sequence index when IsIndex.
type PathElem struct {
	Key     string
	Index   int
	IsIndex bool
}

// Key returns p extended by a mapping key.
func (p Path) Key(k string) Path {
	return append(p[:len(p):len(p)], PathElem{Key: k})
}

// Index returns p extended by a sequence index.
func (p Path) Index(i int) Path {
	return append(p[:len(p):len(p)], PathElem{Index: i, IsIndex: true})
}

// String formats p as a.b[0].c; keys that are empty or hold . [ ] " are written ["k"].
func (p Path) String() string {
	var b strings.Builder
	for i, e := range p {
		switch {
		case e.IsIndex:
			b.WriteString("[" + strconv.Itoa(e.Index) + "]")
		case e.Key == "" || strings.ContainsAny(e.Key, ".[]\"") || !utf8.ValidString(e.Key):
			b.WriteString("[" + strconv.Quote(e.Key) + "]")
		default:
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(e.Key)
		}
	}
	return b.String()
}

// ParsePath parses a path written as Path.String writes it, e.g.
// image.repository, spec.containers[0].image or metadata.annotations["a.b/c"].
func ParsePath(s string) (Path, error) {
	var p Path
	i := 0
	for i < len(s) {
		switch s[i] {
		case '.':
			if i == 0 || i+1 >= len(s) || s[i+1] == '.' || s[i+1] == '[' {
				return nil, fmt.Errorf("path %q has an empty key at offset %d", s, i)
			}
			i++
		case '[':
			end := strings.IndexByte(s[i:], ']')
			if i+1 < len(s) && s[i+1] == '"' {
				q, err := strconv.QuotedPrefix(s[i+1:])
				if err != nil {
					return nil, fmt.Errorf("path %q has a bad quoted key at offset %d: %w", s, i, err)
				}
				k, _ := strconv.Unquote(q)
				j := i + 1 + len(q)
				if j >= len(s) || s[j] != ']' {
					return nil, fmt.Errorf("path %q: missing ] after quoted key at offset %d", s, j)
				}
				p = p.Key(k)
				i = j + 1
				continue
			}
			if end < 0 {
				return nil, fmt.Errorf("path %q has an unclosed [ at offset %d", s, i)
			}
			n, err := strconv.Atoi(s[i+1 : i+end])
			if err != nil || n < 0 {
				return nil, fmt.Errorf("path %q has a bad index %q", s, s[i+1:i+end])
			}
			p = p.Index(n)
			i += end + 1
			continue
		}
		j := i
		for j < len(s) && s[j] != '.' && s[j] != '[' {
			j++
		}
		if j > i {
			p = p.Key(s[i:j])
		}
		i = j
	}
	if len(p) == 0 && s != "" {
		return nil, fmt.Errorf("path %q names nothing", s)
	}
	return p, nil
}

// node returns the node at path in document doc, as a YAML reader sees
// it: through aliases and merge keys.
func (f *File) node(doc int, path Path) (*yaml.Node, error) {
	if doc < 0 || doc >= len(f.docs) {
		return nil, fmt.Errorf("%s has no document %d", f.name, doc)
	}
	if docRoot(f.docs[doc].Node) == nil {
		return nil, fmt.Errorf("%s: document %d is empty", f.name, doc)
	}
	n, _ := f.descend(&f.docs[doc], path)
	if n == nil {
		return nil, fmt.Errorf("%s: document %d has nothing at %s", f.name, doc, path)
	}
	return n, nil
}
