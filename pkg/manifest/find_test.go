package manifest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFindKeepsTheFilesOrder: Find parses files findWorkers at a time, and
// answers as if it read them one by one: the references in path order, and
// every file that does not parse named, in path order.
func TestFindKeepsTheFilesOrder(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 50} {
		t.Run(fmt.Sprint(n, " files"), func(t *testing.T) {
			tree := mapTree{}
			var want []string
			var bad []string
			for i := range n {
				name := fmt.Sprintf("apps/%03d.yaml", i)
				if i%7 == 3 {
					tree[name] = "x: [1\n"
					bad = append(bad, name)
					continue
				}
				tree[name] = fmt.Sprintf("containers:\n- image: acme/app%03d:1\n- image: acme/side%03d:2\n", i, i)
				want = append(want, fmt.Sprintf("acme/app%03d", i), fmt.Sprintf("acme/side%03d", i))
			}
			found, err := (&Editor{Tree: tree}).Find(pathSet{})
			var got []string
			for _, f := range found {
				got = append(got, f.Repository)
			}
			require.Equal(t, want, got)
			if len(bad) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			last := -1
			for _, name := range bad {
				i := strings.Index(err.Error(), name)
				require.Greater(t, i, last, "%s named after the files before it: %v", name, err)
				last = i
			}
		})
	}
}
