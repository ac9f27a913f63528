package gitrepo

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/stretchr/testify/require"
)

// TestApplyDeltaMakesWhatGoGitMakes: applyDelta makes, from deltas go-git
// computes, what go-git's PatchDelta makes, at the exact size declared,
// for small objects, a tree-sized one past PatchDelta's 64 KiB first
// buffer, and copies of 0x10000 bytes (the size 0 stands for).
func TestApplyDeltaMakesWhatGoGitMakes(t *testing.T) {
	tree := func(n, changed int) []byte {
		var b bytes.Buffer
		for i := range n {
			v := 2
			if i == changed {
				v = 3
			}
			fmt.Fprintf(&b, "100644 apps/app%04d/deployment.yaml replicas %d\n", i, v)
		}
		return b.Bytes()
	}
	tests := []struct {
		name         string
		base, target []byte
	}{
		{"small edit", []byte("replicas: 2\nimage: web:1.0\n"), []byte("replicas: 3\nimage: web:1.1\n")},
		{"all new", []byte("abc"), []byte(strings.Repeat("xyz", 100))},
		{"68 KB tree, one entry changed", tree(1500, 700), tree(1500, 701)},
		{"long runs copied", bytes.Repeat([]byte("a"), 300_000), append(bytes.Repeat([]byte("a"), 300_000), 'b')},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			delta := packfile.DiffDelta(tt.base, tt.target)
			got, err := applyDelta(tt.base, delta)
			require.NoError(t, err)
			require.Equal(t, tt.target, got)
			require.Equal(t, len(tt.target), cap(got), "sized as declared")
			theirs, err := packfile.PatchDelta(tt.base, delta)
			require.NoError(t, err)
			require.Equal(t, theirs, got)
		})
	}
}

// TestApplyDeltaRefusesBadDeltas: a delta that does not fit its base or
// its declared size is an error, never a panic or a short object.
func TestApplyDeltaRefusesBadDeltas(t *testing.T) {
	base := []byte("0123456789")
	tests := []struct {
		name  string
		delta []byte
		want  string
	}{
		{"empty", nil, "bad delta"},
		{"for another base", []byte{11, 1, 0x01, 'x'}, "11-byte base"},
		{"copy past the base", []byte{10, 4, 0x91, 8, 4}, "copies bytes 8 to 12"},
		{"insert past its end", []byte{10, 4, 0x04, 'a', 'b'}, "ends within an insert"},
		{"more than declared", []byte{10, 2, 0x03, 'a', 'b', 'c'}, "more than the 2 bytes"},
		{"less than declared", []byte{10, 5, 0x02, 'a', 'b'}, "makes 2 bytes, not the 5"},
		{"reserved instruction", []byte{10, 1, 0x00}, "reserved"},
		{"instruction cut short", []byte{10, 1, 0x91, 0}, "unexpected EOF"},
		{"declares more than a pack may hold", []byte{10, 0x80, 0x80, 0x80, 0x80, 0x10}, "MaxPackMemory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := applyDelta(base, tt.delta)
			require.ErrorContains(t, err, tt.want)
		})
	}
}
