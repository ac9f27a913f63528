package yamledit

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Splice replaces the bytes [Start, End) of a file with Text. Start == End inserts.
type Splice struct {
	Start, End int
	Text       string
}

// Apply returns a copy of data with every splice applied. Splices may come in
// any order; overlapping splices, or two inserts at the same offset, are refused.
func Apply(data []byte, splices ...Splice) ([]byte, error) {
	s := append([]Splice(nil), splices...)
	sort.SliceStable(s, func(i, j int) bool { return s[i].Start < s[j].Start })
	grow := 0
	for i, sp := range s {
		if sp.Start < 0 || sp.End < sp.Start || sp.End > len(data) {
			return nil, fmt.Errorf("splice [%d,%d) is outside the %d bytes of the file", sp.Start, sp.End, len(data))
		}
		if i > 0 {
			prev := s[i-1]
			if sp.Start < prev.End || sp.Start == prev.Start && (sp.Start == sp.End || prev.Start == prev.End) {
				return nil, fmt.Errorf("splices [%d,%d) and [%d,%d) overlap", prev.Start, prev.End, sp.Start, sp.End)
			}
		}
		grow += len(sp.Text) - (sp.End - sp.Start)
	}
	out := make([]byte, 0, len(data)+grow)
	last := 0
	for _, sp := range s {
		out = append(out, data[last:sp.Start]...)
		out = append(out, sp.Text...)
		last = sp.End
	}
	return append(out, data[last:]...), nil
}

// Apply applies the splices to the file's bytes and checks that the result
// still parses; an edit never produces a file that does not parse. It
// releases f's bytes and documents first, so two copies of a large file
// are not held at once: f is spent, parse the result to edit it again.
func (f *File) Apply(splices ...Splice) ([]byte, error) {
	out, err := Apply(f.data, splices...)
	if err != nil {
		return nil, fmt.Errorf("edit %s: %w", f.name, err)
	}
	f.data, f.lines, f.docs, f.scalars, f.aliased, f.spans = nil, nil, nil, nil, nil, nil
	if _, err := Parse(f.name, out); err != nil {
		return nil, fmt.Errorf("edit %s would break it: %w", f.name, err)
	}
	return out, nil
}

// Replace returns the splice that sets the scalar to value. The scalar keeps
// its quoting style; a plain scalar is double-quoted when YAML would read the
// new value as something other than a string (1.10, 2024, true, null, 0x1f,
// 1e3 ...) or when the value cannot be written plain.
func (s Scalar) Replace(value string) (Splice, error) {
	if !s.Editable() {
		return Splice{}, fmt.Errorf("value at %s (line %d) cannot be edited in place: block scalars and plain values folded over several lines are left alone", s.Path, s.Node.Line)
	}
	if !utf8.ValidString(value) {
		return Splice{}, fmt.Errorf("new value for %s is not valid UTF-8", s.Path)
	}
	var text string
	switch {
	case s.Style&yaml.DoubleQuotedStyle != 0:
		text = DoubleQuote(value)
	case s.Style&yaml.SingleQuotedStyle != 0:
		text = singleQuote(value)
	default:
		text = FormatScalar(value, s.InFlow)
	}
	return Splice{Start: s.Start, End: s.End, Text: text}, nil
}

// Replace returns the splice that sets the scalar at path in document doc to value.
func (f *File) Replace(doc int, path, value string) (Splice, error) {
	s, err := f.Lookup(doc, path)
	if err != nil {
		return Splice{}, err
	}
	sp, err := s.Replace(value)
	if err != nil {
		return Splice{}, fmt.Errorf("%s: %w", f.name, err)
	}
	return sp, nil
}

// FormatScalar writes value as a plain scalar when YAML reads it back as the
// same string, and double-quoted otherwise. inFlow is true inside {...} or [...].
func FormatScalar(value string, inFlow bool) string {
	if plainSafe(value, inFlow) {
		return value
	}
	return DoubleQuote(value)
}

// DoubleQuote writes value as a YAML double-quoted scalar.
func DoubleQuote(value string) string {
	var b strings.Builder
	b.Grow(len(value) + 2)
	b.WriteByte('"')
	for _, r := range value {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if needsEscape(r) {
				if r > 0xFFFF {
					fmt.Fprintf(&b, `\U%08X`, r)
				} else {
					fmt.Fprintf(&b, `\u%04X`, r)
				}
				continue
			}
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// needsEscape reports whether r may not appear literally in a quoted scalar.
func needsEscape(r rune) bool {
	switch {
	case r == utf8.RuneError, r == 0xFEFF, r == 0x85, r == 0x2028, r == 0x2029:
		return true
	case r < 0x20 || r == 0x7F || r >= 0x80 && r < 0xA0:
		return true
	case r >= 0xD800 && r <= 0xDFFF, r == 0xFFFE, r == 0xFFFF:
		return true
	}
	return false
}

func singleQuote(value string) string {
	for _, r := range value {
		if needsEscape(r) || r == '\t' {
			return DoubleQuote(value)
		}
	}
	return "'" + strings.ReplaceAll(value, "'", "''") + "'"
}

var (
	// YAML 1.1 forms that other readers (go-yaml v2, sigs.k8s.io/yaml, PyYAML)
	// take as booleans, nulls, numbers and merge keys.
	yaml11Special = regexp.MustCompile(`^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|~|null|Null|NULL|<<|=)$`)
	yaml11Int     = regexp.MustCompile(`^[-+]?(?:0b[01_]+|0o?[0-7_]+|0x[0-9a-fA-F_]+|[0-9][0-9_]*(?::[0-5]?[0-9])*)$`)
	yaml11Float   = regexp.MustCompile(`^(?:[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*(?:[eE][-+]?[0-9]+)|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$`)
)

// plainSafe reports whether value can be written as a plain scalar that every
// common YAML reader takes as this very string.
func plainSafe(v string, inFlow bool) bool {
	if v == "" || !utf8.ValidString(v) {
		return false
	}
	first, _ := utf8.DecodeRuneInString(v)
	last, _ := utf8.DecodeLastRuneInString(v)
	if unicode.IsSpace(first) || unicode.IsSpace(last) || strings.ContainsRune("-?:,[]{}#&*!|>'\"%@`", first) {
		return false
	}
	if last == ':' || strings.Contains(v, ": ") || strings.Contains(v, " #") || strings.HasPrefix(v, "---") || strings.HasPrefix(v, "...") {
		return false
	}
	for i, r := range v {
		if needsEscape(r) || r == '\t' || r == '\n' || r == '\r' {
			return false
		}
		if inFlow && strings.ContainsRune(",[]{}", r) {
			return false
		}
		// In a flow collection a colon is part of the scalar only when a
		// character other than a blank or an indicator follows it (nginx:1.25).
		if inFlow && r == ':' && (i+1 >= len(v) || strings.ContainsRune(" ,[]{}", rune(v[i+1]))) {
			return false
		}
	}
	if yaml11Special.MatchString(v) || yaml11Int.MatchString(v) || yaml11Float.MatchString(v) {
		return false
	}
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(v), &n); err != nil {
		return false
	}
	r := docRoot(&n)
	return r != nil && r.Kind == yaml.ScalarNode && r.Tag == "!!str" && r.Style == 0 && r.Value == v
}

// Field is a key and scalar value to insert.
type Field struct {
	Key, Value string
}

// InsertKey returns the splice that adds key: value to the block mapping at
// path (an empty path is the document's top level), after its last entry,
// with the mapping's indentation and the file's line endings. The key must
// not exist yet.
func (f *File) InsertKey(doc int, path string, field Field) (Splice, error) {
	return f.insertKeyLines(doc, path, field.Key, []string{field.Key + ": " + FormatScalar(field.Value, false)})
}

// AppendMapping returns the splice that adds a mapping entry made of fields
// to the end of the block sequence at path, as kustomize writes an images
// entry. When the sequence's key is missing from its parent block mapping,
// the key is created with the entry as its only item.
func (f *File) AppendMapping(doc int, path string, fields []Field) (Splice, error) {
	if len(fields) == 0 {
		return Splice{}, fmt.Errorf("append to %s: no fields given", path)
	}
	p, err := ParsePath(path)
	if err != nil {
		return Splice{}, err
	}
	if len(p) == 0 || p[len(p)-1].IsIndex {
		return Splice{}, fmt.Errorf("append to %s: path must end in a key", path)
	}
	seq, err := f.node(doc, p)
	if err != nil {
		// Create the key holding a one-entry sequence.
		key := p[len(p)-1].Key
		indent := f.sequenceIndent(doc)
		lines := []string{key + ":"}
		for _, l := range entryLines(fields, 2) {
			lines = append(lines, strings.Repeat(" ", indent)+l)
		}
		return f.insertKeyLines(doc, p[:len(p)-1].String(), key, lines)
	}
	if seq.Kind != yaml.SequenceNode || seq.Style&yaml.FlowStyle != 0 || len(seq.Content) == 0 {
		return Splice{}, fmt.Errorf("%s: document %d: %s is not a non-empty block sequence: add the entry by hand", f.name, doc, path)
	}
	dashCol := seq.Column
	gap := 2
	if first := seq.Content[0]; first.Line == seq.Line && first.Column > dashCol {
		gap = first.Column - dashCol
	}
	lines := entryLines(fields, gap)
	indent := strings.Repeat(" ", dashCol-1)
	if at, ok := f.endOfNode(seq); ok {
		return f.linesAfter(at, indent, lines), nil
	}
	// The end of the last item is unknown: insert before the first item.
	at := f.offset(seq.Line, seq.Column)
	if at < 0 || f.data[at] != '-' {
		return Splice{}, fmt.Errorf("%s: document %d: cannot locate the sequence at %s", f.name, doc, path)
	}
	return f.linesBefore(at, indent, lines), nil
}

// entryLines renders fields as the lines of a sequence item: "- k: v" then
// "  k: v", the keys gap columns right of the dash.
func entryLines(fields []Field, gap int) []string {
	lines := make([]string, len(fields))
	for i, fl := range fields {
		prefix := strings.Repeat(" ", gap)
		if i == 0 {
			prefix = "-" + strings.Repeat(" ", gap-1)
		}
		lines[i] = prefix + fl.Key + ": " + FormatScalar(fl.Value, false)
	}
	return lines
}

// insertKeyLines inserts lines (the first one holds the key) into the block
// mapping at path, indenting each line like the mapping's keys.
func (f *File) insertKeyLines(doc int, path, key string, lines []string) (Splice, error) {
	p, err := ParsePath(path)
	if err != nil {
		return Splice{}, err
	}
	m, err := f.node(doc, p)
	if err != nil {
		return Splice{}, err
	}
	where := p.String()
	if where == "" {
		where = "the top level"
	}
	if m.Kind != yaml.MappingNode || m.Style&yaml.FlowStyle != 0 || len(m.Content) == 0 {
		return Splice{}, fmt.Errorf("%s: document %d: %s is not a non-empty block mapping: add %s by hand", f.name, doc, where, key)
	}
	if mapValue(m, key) != nil {
		return Splice{}, fmt.Errorf("%s: document %d: %s already has key %s", f.name, doc, where, key)
	}
	firstKey := m.Content[0]
	indent := strings.Repeat(" ", firstKey.Column-1)
	if at, ok := f.endOfNode(m); ok {
		return f.linesAfter(at, indent, lines), nil
	}
	// The end of the last entry is unknown: insert before the first key.
	at := f.offset(firstKey.Line, firstKey.Column)
	if at < 0 || firstKey.Style&yaml.TaggedStyle != 0 || f.data[at] == '&' || f.data[at] == '!' || f.data[at] == '?' {
		return Splice{}, fmt.Errorf("%s: document %d: cannot find where to add %s in %s", f.name, doc, key, where)
	}
	return f.linesBefore(at, indent, lines), nil
}

// linesAfter inserts lines, indented, at the end of a node that ends at at
// (on a line of its own, after a line break added when the file lacks one).
func (f *File) linesAfter(at int, indent string, lines []string) Splice {
	eol := f.EOL()
	var b strings.Builder
	if at == len(f.data) && !f.endsWithBreak() {
		b.WriteString(eol)
	}
	for _, l := range lines {
		b.WriteString(indent + l + eol)
	}
	return Splice{Start: at, End: at, Text: b.String()}
}

// linesBefore inserts lines at at, the column of a node's first item: the
// first line takes the item's place, the item moves below them.
func (f *File) linesBefore(at int, indent string, lines []string) Splice {
	eol := f.EOL()
	var b strings.Builder
	for i, l := range lines {
		if i > 0 {
			b.WriteString(indent)
		}
		b.WriteString(l + eol)
	}
	b.WriteString(indent)
	return Splice{Start: at, End: at, Text: b.String()}
}

func (f *File) endsWithBreak() bool {
	n := len(f.data)
	return n > 0 && (f.data[n-1] == '\n' || f.data[n-1] == '\r')
}

// endOfNode returns the offset of the start of the line after the last line
// of a block collection, when its last value is a scalar or alias on one line.
func (f *File) endOfNode(n *yaml.Node) (int, bool) {
	for {
		if n.Style&yaml.FlowStyle != 0 {
			return 0, false
		}
		switch n.Kind {
		case yaml.MappingNode, yaml.SequenceNode:
			if len(n.Content) == 0 {
				return 0, false
			}
			last := n.Content[len(n.Content)-1]
			if n.Kind == yaml.MappingNode && last.Kind == yaml.ScalarNode && last.Value == "" && last.Style&^yaml.TaggedStyle == 0 && last.Tag == "!!null" {
				// key: with no value ends on the key's line.
				last = n.Content[len(n.Content)-2]
			}
			n = last
			continue
		case yaml.ScalarNode:
			start, end, ok := f.span(n, false)
			if !ok || f.lineOf(start) != f.lineOf(end) {
				return 0, false
			}
			return f.nextLine(end), true
		case yaml.AliasNode:
			p := f.offset(n.Line, n.Column)
			if p < 0 || f.data[p] != '*' {
				return 0, false
			}
			return f.nextLine(p), true
		}
		return 0, false
	}
}

// nextLine returns the offset of the line after the one holding p, or len(data).
func (f *File) nextLine(p int) int {
	l := f.lineOf(p)
	if l < len(f.lines) {
		return f.lines[l]
	}
	return len(f.data)
}

// sequenceIndent returns how far right of its key a block sequence in doc is
// indented (kustomize writes 0, many authors 2), so a new one matches.
func (f *File) sequenceIndent(doc int) int {
	indent := 0
	var visit func(n *yaml.Node) bool
	visit = func(n *yaml.Node) bool {
		if n.Kind == yaml.MappingNode && n.Style&yaml.FlowStyle == 0 {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if v.Kind == yaml.SequenceNode && v.Style&yaml.FlowStyle == 0 && v.Line > k.Line && v.Column >= k.Column {
					indent = v.Column - k.Column
					return true
				}
			}
		}
		for _, c := range n.Content {
			if visit(c) {
				return true
			}
		}
		return false
	}
	if doc >= 0 && doc < len(f.docs) {
		visit(f.docs[doc].Node)
	}
	return indent
}
