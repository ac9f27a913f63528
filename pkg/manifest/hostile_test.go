package manifest_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestHostileFilesAreRefusedByName: YAML bombs, binary and non-UTF-8 files
// in the tracked paths fail the put with a message naming the file, commit
// nothing, and never crash or exhaust memory; outside `paths` they are not
// read at all, and a huge but ordinary file is simply handled.
func TestHostileFilesAreRefusedByName(t *testing.T) {
	t.Parallel()
	bomb := "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n" +
		"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n" +
		"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n" +
		"g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
	deploy := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: acme/web:1.0.0\n"
	var huge strings.Builder
	huge.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n")
	for i := range 45000 { // 1 MB, under yamledit.MaxNodes
		fmt.Fprintf(&huge, "  key%d: value-%d\n", i, i)
	}
	tests := []struct {
		name, file, content string
		want                []string
	}{
		{"yaml bomb", "app/bomb.yaml", bomb, []string{"app/bomb.yaml", "alias"}},
		{"binary", "app/logo.yaml", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", []string{"app/logo.yaml"}},
		{"not utf-8", "app/latin1.yaml", "name: caf\xe9\n", []string{"app/latin1.yaml", "UTF-8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, map[string]string{"app/web.yaml": deploy, tt.file: tt.content, "other/web.yaml": deploy})
			params := map[string]any{"images": []map[string]any{{"repository": "acme/web", "tag": "2.0.0"}}}
			_, res := f.put(t, f.source(nil), params)
			res.Fails(t, tt.want...)
			require.NotContains(t, res.Stderr, "goroutine")
			require.Equal(t, f.seed, f.srv.Tip(t, "deploy", "main"), "nothing committed")

			out, res := f.put(t, f.source(map[string]any{"paths": []string{"other/"}}), params)
			res.OK(t, nil)
			require.NotEqual(t, f.seed, out.Version["ref"], "outside paths the hostile file is not read")
		})
	}
	t.Run("huge ordinary file", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, map[string]string{"app/web.yaml": deploy, "app/big.yaml": huge.String()})
		_, res := f.put(t, f.source(nil), map[string]any{"images": []map[string]any{{"repository": "acme/web", "tag": "2.0.0"}}})
		res.OK(t, nil)
		require.Contains(t, f.read(t, "app/web.yaml"), "image: acme/web:2.0.0")
		require.Equal(t, huge.String(), f.read(t, "app/big.yaml"))
	})
}
