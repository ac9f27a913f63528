package yamledit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Limits that bound the memory and time one file costs. A parsed node costs
// about 200 bytes (yaml.v3 nodes), so a file is measured before it is
// parsed: its size, then an estimate of its nodes (estimateNodes). Aliases
// are counted after parsing: documents that are small on disk but expand
// into huge values when their aliases are resolved (YAML bombs).
const (
	// MaxFileSize is the largest file, in bytes, that Parse reads.
	MaxFileSize = 8 << 20
	// MaxNodes is the largest number of nodes a file may have, as
	// estimateNodes counts them before parsing.
	MaxNodes = 150_000
	// MaxAliases is the largest number of alias nodes (*name) accepted in one file.
	MaxAliases = 1000
	// MaxExpandedNodes is the largest number of nodes a file may have once
	// every alias is expanded.
	MaxExpandedNodes = 1_000_000
)

// LimitError is a file refused for its size or its number of nodes, before
// it is parsed.
type LimitError struct {
	File string
	Msg  string
}

func (e *LimitError) Error() string { return e.File + ": " + e.Msg }

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
	ascii   bool     // no byte >= 0x80: a column is a byte count
	cursor  [3]int   // line, column, offset of offset's last answer
	scalars []Scalar // built lazily by Scalars
	// aliased holds each node an alias refers to, with whether it is written
	// inside a flow collection. Every place an alias shows such a node, its
	// bytes are those of the anchored node.
	aliased map[*yaml.Node]bool
	spans   map[*yaml.Node][2]int // span of aliased scalars, computed once
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
// only. It refuses input that is not UTF-8 text, files over MaxFileSize or
// MaxNodes (with a *LimitError, before parsing) and YAML bombs.
func Parse(filename string, data []byte) (*File, error) {
	if len(data) > MaxFileSize {
		return nil, &LimitError{File: filename, Msg: fmt.Sprintf("%d bytes is more than a YAML file may have (%d MiB)", len(data), MaxFileSize>>20)}
	}
	if bytes.HasPrefix(data, []byte{0xFE, 0xFF}) || bytes.HasPrefix(data, []byte{0xFF, 0xFE}) {
		return nil, fmt.Errorf("%s: file is UTF-16 encoded: only UTF-8 YAML is supported", filename)
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return nil, fmt.Errorf("%s: file is binary, not YAML: it has a NUL byte at offset %d", filename, i)
	}
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%s: file is not valid UTF-8 text", filename)
	}
	n := estimateNodes(data, MaxNodes)
	if n > MaxNodes {
		return nil, &LimitError{File: filename, Msg: fmt.Sprintf("more YAML nodes (keys, values, list items) than the %d a file may have", MaxNodes)}
	}
	if n > MaxNodes/8 || len(data) > MaxFileSize/8 {
		// A large tree is coming: collect what earlier work left (a file
		// read, a tree released by File.Apply) first, so the tree reuses
		// that memory instead of growing the heap past twice its size.
		runtime.GC()
	}
	f := &File{name: filename, data: data, crlf: bytes.Contains(data, []byte("\r\n")), ascii: isASCII(data)}
	f.lines = lineStarts(data)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	aliases, expanded := 0, 0
	for i := 0; ; i++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, parseError(filename, err)
		}
		docAliases := f.noteAliases(&n)
		aliases += docAliases
		if aliases > MaxAliases {
			return nil, fmt.Errorf("%s: document %d: more than %d aliases: refusing a possible YAML bomb", filename, i, MaxAliases)
		}
		if docAliases > 0 {
			size, err := f.checkExpansion(&n, MaxExpandedNodes-expanded)
			if err != nil {
				return nil, fmt.Errorf("%s: document %d: %w", filename, i, err)
			}
			expanded += size
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

// noteAliases counts the alias nodes under doc and records in f.aliased
// each node they refer to, with whether it is written in a flow collection.
func (f *File) noteAliases(doc *yaml.Node) int {
	c := 0
	var count func(n *yaml.Node)
	count = func(n *yaml.Node) {
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			c++
			if f.aliased == nil {
				f.aliased = map[*yaml.Node]bool{}
			}
			f.aliased[n.Alias] = false
		}
		for _, ch := range n.Content {
			count(ch)
		}
	}
	count(doc)
	if c == 0 {
		return 0
	}
	var flow func(n *yaml.Node, inFlow bool)
	flow = func(n *yaml.Node, inFlow bool) {
		inFlow = inFlow || n.Style&yaml.FlowStyle != 0
		if _, ok := f.aliased[n]; ok && inFlow {
			f.aliased[n] = true
		}
		for _, ch := range n.Content {
			flow(ch, inFlow)
		}
	}
	flow(doc, false)
	return c
}

// checkExpansion counts the nodes of n with every alias expanded, memoising
// the nodes aliases refer to, and refuses cycles and documents that expand
// past budget.
func (f *File) checkExpansion(n *yaml.Node, budget int) (int, error) {
	memo := map[*yaml.Node]int{}
	const inProgress = -1
	tooMany := fmt.Errorf("aliases expand to more than %d nodes: refusing a possible YAML bomb", MaxExpandedNodes)
	var size func(n *yaml.Node) (int, error)
	size = func(n *yaml.Node) (int, error) {
		_, target := f.aliased[n]
		if target {
			if v, ok := memo[n]; ok {
				if v == inProgress {
					return 0, fmt.Errorf("an alias refers to a value that contains it")
				}
				return v, nil
			}
			memo[n] = inProgress
		}
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
			if total += s; total > budget {
				return 0, tooMany
			}
		}
		if total > budget {
			return 0, tooMany
		}
		if target {
			memo[n] = total
		}
		return total, nil
	}
	return size(n)
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
// YAML scanner does) into a byte offset, or -1. In ASCII text a column is a
// byte count; otherwise the count goes on from the previous answer when it
// was earlier on the same line, so locating every value of a long line
// stays linear.
func (f *File) offset(line, col int) int {
	if line < 1 || line > len(f.lines) || col < 1 {
		return -1
	}
	if f.ascii {
		end := len(f.data) // where the line's break starts
		if line < len(f.lines) {
			end = f.lines[line] - 1
			if f.data[end] == '\n' && end > f.lines[line-1] && f.data[end-1] == '\r' {
				end--
			}
		}
		if p := f.lines[line-1] + col - 1; p <= end {
			return p
		}
		return -1
	}
	p, c := f.lines[line-1], 1
	if f.cursor[0] == line && f.cursor[1] <= col {
		c, p = f.cursor[1], f.cursor[2]
	}
	for ; c < col; c++ {
		if p >= len(f.data) || breakLen(f.data, p) > 0 {
			return -1
		}
		_, size := utf8.DecodeRune(f.data[p:])
		p += size
	}
	f.cursor = [3]int{line, col, p}
	return p
}

func isASCII(data []byte) bool {
	for _, c := range data {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// estimateNodes counts, without parsing, about how many nodes data holds,
// stopping soon after limit: one per scalar (plain, quoted or block), per
// block indicator (- ? : before a blank) and per flow indicator ([ { ,).
// Comments are left out, and a quoted or block scalar counts once however
// many lines it spans. A key: value line counts 3 for its 2 nodes; flow
// mappings of keys without values ({a, b}) count a little fewer than the
// parser makes.
func estimateNodes(data []byte, limit int) int {
	blank := func(i int) bool {
		return i >= len(data) || data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'
	}
	n := 0
	block := -1 // inside a block scalar: the indentation its lines are deeper than
	for i := 0; i < len(data) && n <= limit; {
		ind := 0
		for i+ind < len(data) && data[i+ind] == ' ' {
			ind++
		}
		end := i + ind
		for end < len(data) && data[end] != '\n' {
			end++
		}
		if block >= 0 {
			if ind > block || len(bytes.TrimSpace(data[i+ind:end])) == 0 {
				i = end + 1
				continue
			}
			block = -1
		}
		first, dash := -1, ind // columns of the line's first token other than "- ", and of its last "- "
		for k := i + ind; k < end; {
			c := data[k]
			switch {
			case c == ' ' || c == '\t' || c == '\r' || c == ']' || c == '}':
				k++
				continue
			case c == '#':
				k = end
				continue
			case c == ',' || c == '[' || c == '{':
				n++
				k++
				continue
			case (c == '-' || c == '?' || c == ':') && blank(k+1):
				if c == '-' && first < 0 {
					dash = k - i
				}
				n++
				k++
				continue
			case (c == '|' || c == '>') && blockHeader(data[k+1:end]):
				block = first
				if first < 0 {
					block = dash
				}
				n++
				k = end
				continue
			}
			if k == i && (bytes.HasPrefix(data[k:end], []byte("---")) || bytes.HasPrefix(data[k:end], []byte("..."))) && blank(k+3) {
				n += 3 // a document costs about three nodes
				k += 3
				continue
			}
			n++
			if first < 0 {
				first = k - i
			}
			switch c {
			case '"', '\'':
				k = skipQuoted(data, k)
				for end < k {
					end++
					for end < len(data) && data[end] != '\n' {
						end++
					}
				}
			default: // a plain scalar, an alias, an anchor or tag and what follows
				for k < end && !(data[k] == ':' && blank(k+1)) && !(data[k] == '#' && blank(k-1)) && strings.IndexByte(",[]{}", data[k]) < 0 {
					k++
				}
			}
		}
		i = end + 1
	}
	return n
}

// blockHeader reports whether rest, what follows | or > on its line, is a
// block scalar header: indentation and chomping indicators, then blanks and
// maybe a comment.
func blockHeader(rest []byte) bool {
	i := 0
	for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '+' || rest[i] == '-') {
		i++
	}
	t := bytes.TrimSpace(rest[i:])
	return len(t) == 0 || t[0] == '#' && i < len(rest) && (rest[i] == ' ' || rest[i] == '\t')
}

// skipQuoted returns the offset after the quoted scalar starting at data[k].
func skipQuoted(data []byte, k int) int {
	q := data[k]
	for j := k + 1; j < len(data); j++ {
		switch {
		case q == '"' && data[j] == '\\':
			j++
		case data[j] == q && q == '\'' && j+1 < len(data) && data[j+1] == '\'':
			j++
		case data[j] == q:
			return j + 1
		}
	}
	return len(data)
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
