package yamledit

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// nodes counts what the parser makes of data.
func nodes(t *testing.T, data string) int {
	t.Helper()
	var count func(n *yaml.Node) int
	count = func(n *yaml.Node) int {
		c := 1
		for _, ch := range n.Content {
			c += count(ch)
		}
		return c
	}
	dec := yaml.NewDecoder(strings.NewReader(data))
	total := 0
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			return total
		}
		total += count(&n)
	}
}

// TestEstimateNodes: the count made before parsing is close to what the
// parser makes, and never far below it, for dense and ordinary shapes;
// comments, quoted and block scalars count once.
func TestEstimateNodes(t *testing.T) {
	repeat := func(unit string, n int) string { return strings.Repeat(unit, n) }
	numbered := func(format string, n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, format, i)
		}
		return b.String()
	}
	tests := []struct {
		name, in string
		want     int // exact estimate
	}{
		{"block sequence", repeat("- a\n", 100), 200},
		{"nested dashes", repeat("- - - a\n", 10), 40},
		{"keys without values", numbered("k%d:\n", 100), 200},
		{"key: value", numbered("k%d: v\n", 100), 300},
		{"flow sequence", "[" + repeat("a,", 99) + "a]\n", 200},
		{"flow mapping of keys", "{" + numbered("k%d,", 99) + "z}\n", 200},
		{"documents", repeat("---\n", 10), 30},
		{"comments", repeat("# a: b, [c] - d\n", 10) + "a: b # c: d\n", 3},
		{"quoted", "a: \"x: y, [z]\n  - w\"\nb: 'it''s: {}'\n", 6},
		{"block scalar", "a: |\n  x: y\n  - z, [w]\n\n  q\nb: >-\n  {}\nc: d\n", 9},
		{"block scalar in a sequence", "- |\n  a: b\n- name: x\n  script: |\n    - y\n  z: 1\n", 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := estimateNodes([]byte(tt.in), 1<<30)
			require.Equal(t, tt.want, got)
			real := nodes(t, tt.in)
			require.GreaterOrEqual(t, got*5/4+2, real, "the parser makes %d nodes", real) // +2: the first document and its root
			require.LessOrEqual(t, got, 3*real, "the parser makes %d nodes", real)
		})
	}
}

// TestLimits: files over MaxFileSize or MaxNodes are refused with a
// *LimitError before they are parsed; just under, they parse.
func TestLimits(t *testing.T) {
	big := "a: " + strings.Repeat("x", MaxFileSize) + "\n"
	_, err := Parse("big.yaml", []byte(big))
	var limit *LimitError
	require.True(t, errors.As(err, &limit), "%v", err)
	require.EqualError(t, err, fmt.Sprintf("big.yaml: %d bytes is more than a YAML file may have (8 MiB)", len(big)))
	_, err = Parse("big.yaml", []byte(big[:MaxFileSize-1]+"\n"))
	require.NoError(t, err)

	dense := strings.Repeat("- a\n", MaxNodes/2)
	_, err = Parse("dense.yaml", []byte(dense+"- a\n"))
	require.True(t, errors.As(err, &limit), "%v", err)
	require.EqualError(t, err, fmt.Sprintf("dense.yaml: more YAML nodes (keys, values, list items) than the %d a file may have", MaxNodes))
	_, err = Parse("dense.yaml", []byte(dense))
	require.NoError(t, err)

	// Aliases expanding each document to 300,000 nodes: three documents
	// are accepted, a fourth takes the file past MaxExpandedNodes.
	doc := "a: &a [" + strings.Repeat("x, ", 99) + "x]\nb: &b [" + strings.Repeat("*a, ", 99) + "*a]\nc: [" + strings.Repeat("*b, ", 29) + "*b]\n"
	_, err = Parse("bomb.yaml", []byte(strings.Repeat(doc+"---\n", 2)+doc))
	require.NoError(t, err)
	_, err = Parse("bomb.yaml", []byte(strings.Repeat(doc+"---\n", 3)+doc))
	require.EqualError(t, err, "bomb.yaml: document 3: aliases expand to more than 1000000 nodes: refusing a possible YAML bomb")
}

// TestLongLines: locating the values of a file written on one line takes
// time linear in its length, ASCII or not (it was quadratic: an 8 MiB flow
// sequence took over ten minutes).
func TestLongLines(t *testing.T) {
	for _, name := range []string{"ascii", "utf-8"} {
		t.Run(name, func(t *testing.T) {
			pad := ""
			if name == "utf-8" {
				pad = "é"
			}
			n := 12000 // 108,000 nodes
			in := "{containers: [" + strings.Repeat(`{name: "`+pad+`", image: "acme/web:1"}, `, n) + "]}\n"
			f, err := Parse("one-line.yaml", []byte(in))
			require.NoError(t, err)
			imgs := f.FindImages(FindOptions{})
			require.Len(t, imgs, n)
			last := imgs[n-1].Ref
			require.Equal(t, `"acme/web:1"`, in[last.Start:last.End])
		})
	}
}
