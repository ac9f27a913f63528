// Package yamledit locates values in YAML files with go.yaml.in/yaml/v3 nodes
// and edits them by splicing the bytes of the original file. A document is
// never re-encoded, so every byte outside an edited value stays as it was:
// comments, key order, quoting, indentation, document separators, line
// endings and byte-order mark.
package yamledit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Limits that protect against YAML bombs: documents that are small on disk
// but expand into huge values when their aliases are resolved.
const (
	// MaxAliases is the largest number of alias nodes (*name) accepted in one file.
	MaxAliases = 1000
	// MaxExpandedNodes is the largest number of nodes one document may have
	// once every alias is expanded.
	MaxExpandedNodes = 1_000_000
)

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// File is a parsed YAML file: its original bytes and one node tree per document.
type File struct {
	name string
	data []byte
	docs []Document
	// lines holds the byte offset at which each line starts, counting line
	// breaks the way the YAML scanner does (LF, CR LF, CR, NEL, LS, PS).
	lines   []int
	crlf    bool
	scalars []Scalar // built lazily by Scalars
}

// Document is one YAML document of a file.
type Document struct {
	// Index is the position of the document in the file, from 0.
	Index int
	// APIVersion and Kind are the document's top-level apiVersion and kind, when present.
	APIVersion, Kind string
	// Node is the yaml.v3 document node; treat it as read-only.
	Node *yaml.Node
}

// ParseError is a YAML syntax error located in a file.
type ParseError struct {
	File string
	Line int // 0 when the parser gave no line
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

var yamlErrLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse parses every document of data. filename is used in error messages
// only. It refuses input that is not UTF-8 text and YAML bombs.
func Parse(filename string, data []byte) (*File, error) {
	if bytes.HasPrefix(data, []byte{0xFE, 0xFF}) || bytes.HasPrefix(data, []byte{0xFF, 0xFE}) {
		return nil, fmt.Errorf("%s: file is UTF-16 encoded: only UTF-8 YAML is supported", filename)
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return nil, fmt.Errorf("%s: file is binary, not YAML: it has a NUL byte at offset %d", filename, i)
	}
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%s: file is not valid UTF-8 text", filename)
	}
	f := &File{name: filename, data: data, crlf: bytes.Contains(data, []byte("\r\n"))}
	f.lines = lineStarts(data)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	aliases := 0
	for i := 0; ; i++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, parseError(filename, err)
		}
		docAliases := countAliases(&n)
		aliases += docAliases
		if aliases > MaxAliases {
			return nil, fmt.Errorf("%s: document %d: more than %d aliases: refusing a possible YAML bomb", filename, i, MaxAliases)
		}
		if docAliases > 0 {
			if err := checkExpansion(&n); err != nil {
				return nil, fmt.Errorf("%s: document %d: %w", filename, i, err)
			}
		}
		d := Document{Index: i, Node: &n}
		if root := docRoot(&n); root != nil && root.Kind == yaml.MappingNode {
			if v := mapValue(root, "kind"); v != nil && v.Kind == yaml.ScalarNode {
				d.Kind = v.Value
			}
			if v := mapValue(root, "apiVersion"); v != nil && v.Kind == yaml.ScalarNode {
				d.APIVersion = v.Value
			}
		}
		f.docs = append(f.docs, d)
	}
	return f, nil
}

func parseError(filename string, err error) error {
	msg := err.Error()
	if m := yamlErrLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &ParseError{File: filename, Line: line, Msg: m[2]}
	}
	if len(msg) > 6 && msg[:6] == "yaml: " {
		msg = msg[6:]
	}
	return &ParseError{File: filename, Msg: msg}
}

// Name returns the file name given to Parse.
func (f *File) Name() string { return f.name }

// Bytes returns the original bytes; do not modify them.
func (f *File) Bytes() []byte { return f.data }

// Documents returns the documents of the file in order.
func (f *File) Documents() []Document { return f.docs }

// EOL returns the line ending the file uses: "\r\n" when it has any, else "\n".
func (f *File) EOL() string {
	if f.crlf {
		return "\r\n"
	}
	return "\n"
}

func docRoot(doc *yaml.Node) *yaml.Node {
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return doc.Content[0]
	}
	return nil
}

// mapValue returns the value of key in a mapping node, or nil.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func countAliases(n *yaml.Node) int {
	c := 0
	if n.Kind == yaml.AliasNode {
		c++
	}
	for _, ch := range n.Content {
		c += countAliases(ch)
	}
	return c
}

// checkExpansion counts the nodes of n with every alias expanded, memoising
// anchored nodes, and refuses cycles and documents that expand too far.
func checkExpansion(n *yaml.Node) error {
	memo := map[*yaml.Node]int{}
	const inProgress = -1
	var size func(n *yaml.Node) (int, error)
	size = func(n *yaml.Node) (int, error) {
		if v, ok := memo[n]; ok {
			if v == inProgress {
				return 0, fmt.Errorf("an alias refers to a value that contains it")
			}
			return v, nil
		}
		memo[n] = inProgress
		total := 1
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			s, err := size(n.Alias)
			if err != nil {
				return 0, err
			}
			total += s
		}
		for _, c := range n.Content {
			s, err := size(c)
			if err != nil {
				return 0, err
			}
			total += s
			if total > MaxExpandedNodes {
				return 0, fmt.Errorf("aliases expand to more than %d nodes: refusing a possible YAML bomb", MaxExpandedNodes)
			}
		}
		if total > MaxExpandedNodes {
			return 0, fmt.Errorf("aliases expand to more than %d nodes: refusing a possible YAML bomb", MaxExpandedNodes)
		}
		memo[n] = total
		return total, nil
	}
	_, err := size(n)
	return err
}

// lineStarts returns the offset of the first byte of each line. The YAML
// reader skips a leading BOM, so line 1 starts after it.
func lineStarts(data []byte) []int {
	start := 0
	if bytes.HasPrefix(data, utf8BOM) {
		start = len(utf8BOM)
	}
	lines := []int{start}
	for i := start; i < len(data); {
		if n := breakLen(data, i); n > 0 {
			i += n
			lines = append(lines, i)
			continue
		}
		i++
	}
	return lines
}

// breakLen returns the length of the line break at data[i], or 0.
func breakLen(data []byte, i int) int {
	switch c := data[i]; {
	case c == '\n':
		return 1
	case c == '\r':
		if i+1 < len(data) && data[i+1] == '\n' {
			return 2
		}
		return 1
	case c == 0xC2 && i+1 < len(data) && data[i+1] == 0x85: // NEL
		return 2
	case c == 0xE2 && i+2 < len(data) && data[i+1] == 0x80 && (data[i+2] == 0xA8 || data[i+2] == 0xA9): // LS, PS
		return 3
	}
	return 0
}

// offset converts a 1-based line and column (counted in characters, as the
// YAML scanner does) into a byte offset, or -1.
func (f *File) offset(line, col int) int {
	if line < 1 || line > len(f.lines) || col < 1 {
		return -1
	}
	p := f.lines[line-1]
	for c := 1; c < col; c++ {
		if p >= len(f.data) || breakLen(f.data, p) > 0 {
			return -1
		}
		_, size := utf8.DecodeRune(f.data[p:])
		p += size
	}
	return p
}

// lineOf returns the 1-based line holding byte offset p.
func (f *File) lineOf(p int) int {
	lo, hi := 0, len(f.lines)
	for lo+1 < hi {
		mid := (lo + hi) / 2
		if f.lines[mid] <= p {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo + 1
}
