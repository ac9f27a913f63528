package yamledit

import (
	"go.yaml.in/yaml/v3"
)

// A place is where a walk of a document stands, and how it got there.
type place struct {
	doc *Document
	// path is reused by the walk: copy it (String) to keep it.
	path Path
	// inFlow: the node's bytes are inside a flow collection.
	inFlow bool
	// via is the first alias (*a, or <<: *a) crossed to get here, nil when none.
	via *yaml.Node
	// shared: an alias shows the node, or one holding it, at another place
	// too, so the bytes of the node are those of more than one place.
	shared bool
}

// Use is one place of a document that shows a value.
type Use struct {
	Doc  int
	Path string
	// Alias is the line of the alias through which the place shows the
	// value; 0 when the value is written at the place itself.
	Alias int
}

// isMergeKey reports whether k is the merge key <<.
func isMergeKey(k *yaml.Node) bool { return k.Kind == yaml.ScalarNode && k.Tag == "!!merge" }

// entries calls fn with each key and value of mapping m as a YAML reader
// sees them: m's own keys in order, then the keys that merge keys (<<: *a,
// <<: [*a, *b]) bring in and that are not there yet, the first merged
// mapping winning. holder is the mapping the entry is written in; via is
// the first alias crossed to reach holder (nil for m's own entries). fn
// returns false to stop.
func entries(m *yaml.Node, fn func(k, v, holder, via *yaml.Node) bool) bool {
	var merges []*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; isMergeKey(k) {
			merges = append(merges, m.Content[i+1])
		} else if !fn(k, m.Content[i+1], m, nil) {
			return false
		}
	}
	if merges == nil {
		return true
	}
	have := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && !isMergeKey(k) {
			have[k.Value] = true
		}
	}
	for _, mv := range merges {
		sources := []*yaml.Node{mv}
		if mv.Kind == yaml.SequenceNode {
			sources = mv.Content
		}
		for _, src := range sources {
			var alias *yaml.Node
			if src.Kind == yaml.AliasNode {
				alias, src = src, src.Alias
			}
			if src == nil || src.Kind != yaml.MappingNode {
				continue
			}
			more := entries(src, func(k, v, holder, via *yaml.Node) bool {
				if k.Kind == yaml.ScalarNode {
					if have[k.Value] {
						return true
					}
					have[k.Value] = true
				}
				if alias != nil {
					via = alias
				}
				return fn(k, v, holder, via)
			})
			if !more {
				return false
			}
		}
	}
	return true
}

// mapEntry returns the value of key in mapping m as a YAML reader sees it
// (merge keys included, an alias value resolved) and the place it is at,
// reached from at, the place of m. It returns nil when m has no such key.
func (f *File) mapEntry(m *yaml.Node, at place, key string) (*yaml.Node, place) {
	var found, holder, via *yaml.Node
	if m != nil && m.Kind == yaml.MappingNode {
		entries(m, func(k, v, h, vi *yaml.Node) bool {
			if k.Kind == yaml.ScalarNode && k.Value == key {
				found, holder, via = v, h, vi
				return false
			}
			return true
		})
	}
	if found == nil {
		return nil, at
	}
	next := f.entryPlace(m, at, holder, via)
	next.path = at.path.Key(key)
	return f.step(found, &next), next
}

// mapValue returns the value of key in mapping m as a YAML reader sees it,
// or nil.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	var f File
	v, _ := f.mapEntry(m, place{}, key)
	return v
}

// entryPlace is the place of an entry of mapping m (at place at) written
// in holder, reached through the alias via when it is merged in.
func (f *File) entryPlace(m *yaml.Node, at place, holder, via *yaml.Node) place {
	if holder == m {
		return at
	}
	if at.via == nil {
		at.via = via
	}
	if via != nil {
		at.shared = true
		at.inFlow = f.aliased[holder]
	}
	at.inFlow = at.inFlow || holder.Style&yaml.FlowStyle != 0
	return at
}

// step returns the node a YAML reader sees at n, updating at: an alias is
// the node it refers to, written where its anchor is.
func (f *File) step(n *yaml.Node, at *place) *yaml.Node {
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return nil
		}
		if at.via == nil {
			at.via = n
		}
		n, at.shared, at.inFlow = n.Alias, true, f.aliased[n.Alias]
	} else if _, ok := f.aliased[n]; ok {
		at.shared = true
	}
	at.inFlow = at.inFlow || n.Style&yaml.FlowStyle != 0
	return n
}

// walk calls fn for every node of document d as a YAML reader sees it,
// parents before children: an alias is the node it refers to, visited at
// the alias's place, and a mapping has the entries its merge keys bring
// in. A node an alias shows is visited at each place that shows it.
func (f *File) walk(d *Document, fn func(n *yaml.Node, at *place)) {
	root := docRoot(d.Node)
	if root == nil {
		return
	}
	var visit func(n *yaml.Node, at place)
	visit = func(n *yaml.Node, at place) {
		if n = f.step(n, &at); n == nil {
			return
		}
		fn(n, &at)
		switch n.Kind {
		case yaml.MappingNode:
			entries(n, func(k, v, holder, via *yaml.Node) bool {
				if k.Kind == yaml.ScalarNode {
					next := f.entryPlace(n, at, holder, via)
					next.path = append(at.path, PathElem{Key: k.Value})
					visit(v, next)
				}
				return true
			})
		case yaml.SequenceNode:
			for i, c := range n.Content {
				next := at
				next.path = append(at.path, PathElem{Index: i, IsIndex: true})
				visit(c, next)
			}
		}
	}
	visit(root, place{doc: d})
}

// descend returns the node at path p of document d as a YAML reader sees
// it, and its place, or nil.
func (f *File) descend(d *Document, p Path) (*yaml.Node, place) {
	at := place{doc: d}
	n := docRoot(d.Node)
	if n == nil {
		return nil, at
	}
	n = f.step(n, &at)
	for i, e := range p {
		if n == nil {
			return nil, at
		}
		switch {
		case e.IsIndex && n.Kind == yaml.SequenceNode && e.Index < len(n.Content):
			at.path = p[:i+1]
			n = f.step(n.Content[e.Index], &at)
		case !e.IsIndex && n.Kind == yaml.MappingNode:
			n, at = f.mapEntry(n, at, e.Key)
			at.path = p[:i+1]
		default:
			return nil, at
		}
	}
	return n, at
}

// Uses returns, for each of nodes, every place of document doc that shows
// it: where it is written, and each place an alias shows it at.
func (f *File) Uses(doc int, nodes ...*yaml.Node) map[*yaml.Node][]Use {
	want := map[*yaml.Node]bool{}
	for _, n := range nodes {
		want[n] = true
	}
	out := map[*yaml.Node][]Use{}
	if doc < 0 || doc >= len(f.docs) {
		return out
	}
	f.walk(&f.docs[doc], func(n *yaml.Node, at *place) {
		if want[n] {
			out[n] = append(out[n], Use{Doc: doc, Path: at.path.String(), Alias: aliasLine(at.via)})
		}
	})
	return out
}

func aliasLine(via *yaml.Node) int {
	if via == nil {
		return 0
	}
	return via.Line
}
