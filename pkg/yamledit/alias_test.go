package yamledit

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFindImagesThroughAliases: a reference only an alias reaches is found
// at the alias's place, with the bytes of its anchor; the same reference
// shown at several places is one image with the others in Aliased.
func TestFindImagesThroughAliases(t *testing.T) {
	in := `x-c: &c
  name: web
  image: acme/web:1
x-img: &img acme/img:1
x-base: &base
  image: acme/base:1
x-over: &over
  image: acme/over:1
spec:
  containers:
  - *c
  - name: scalar
    image: *img
  - <<: *base
    name: merged
  - <<: [*over, *base]
    name: first-wins
  - <<: *base
    name: own-key-wins
    image: acme/own:1
  initContainers: [*c]
values:
  web: &helm {repository: acme/helm, tag: "1"}
  again: *helm
  api:
    repository: acme/api
    tag: *tag
`
	in = strings.Replace(in, `tag: "1"}`, `tag: &tag "1"}`, 1)
	f, err := Parse("f.yaml", []byte(in))
	require.NoError(t, err)
	type row struct {
		Path, Repo, Tag string
		Line, Via       int // the line the value is written at, and of the alias reaching it
		Aliased         string
	}
	var got []row
	for _, img := range f.FindImages(FindOptions{}) {
		s := img.Scalars()[0]
		r := row{Path: img.Path, Repo: img.Repository, Tag: img.Tag, Line: s.Line(), Via: s.Via}
		for _, u := range img.Aliased {
			r.Aliased += fmt.Sprintf("%s@%d ", u.Path, u.Alias)
		}
		got = append(got, r)
	}
	require.Equal(t, []row{
		{"spec.containers[0].image", "acme/web", "1", 3, 11, "spec.initContainers[0].image@21 "},
		{"spec.containers[1].image", "acme/img", "1", 4, 13, ""},
		{"spec.containers[2].image", "acme/base", "1", 6, 14, ""}, // [3] merges *over first, [4] has its own image
		{"spec.containers[3].image", "acme/over", "1", 8, 16, ""},
		{"spec.containers[4].image", "acme/own", "1", 20, 0, ""},
		{"values.web", "acme/helm", "1", 23, 0, "values.again@24 "},
		{"values.api", "acme/api", "1", 26, 0, ""}, // its own reference: only the tag is shared
	}, got)

	imgs := f.FindImages(FindOptions{})
	web, api := imgs[5].TagScalar, imgs[6].TagScalar
	require.True(t, web.Shared && api.Shared)
	require.Equal(t, web.Start, api.Start, "one tag, written once")
	require.True(t, web.InFlow && api.InFlow, "written in a flow mapping, wherever an alias shows it")
	require.Equal(t, 27, api.Via)
}

// TestUses: Uses lists every place that shows a node, and Shared marks the
// scalars an alias shows elsewhere.
func TestUses(t *testing.T) {
	f, err := Parse("f.yaml", []byte("a: &v 1\nb: *v\nc:\n  <<: {d: *v}\n  e: 2\n"))
	require.NoError(t, err)
	s, err := f.Lookup(0, "a")
	require.NoError(t, err)
	require.True(t, s.Shared)
	require.Equal(t, []Use{{0, "a", 0}, {0, "b", 2}, {0, "c.d", 4}}, f.Uses(0, s.Node)[s.Node])
	e, err := f.Lookup(0, "c.e")
	require.NoError(t, err)
	require.False(t, e.Shared)
	d, err := f.Lookup(0, "c.d")
	require.NoError(t, err)
	require.Equal(t, 4, d.Via)
	require.Equal(t, s.Start, d.Start, "an alias's value has the bytes of its anchor")
}
