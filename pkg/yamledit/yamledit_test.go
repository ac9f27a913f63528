package yamledit

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestParseErrors(t *testing.T) {
	bomb := "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
	for i := 'b'; i <= 'h'; i++ {
		bomb += fmt.Sprintf("%c: &%c [*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	tests := []struct {
		name, in, msg string
	}{
		{"syntax", "a: 1\nb: [\n", "deploy/web.yaml:2: did not find expected node content"},
		{"bad mapping", "a: 1\n b: 2\n", "deploy/web.yaml:2: mapping values are not allowed"},
		{"binary", "a: \x00\x01", "file is binary"},
		{"not utf-8", "a: \xff\xfe\n", "not valid UTF-8"},
		{"utf-16", "\xff\xfea\x00:\x00", "UTF-16"},
		{"many aliases", "a: &a x\nb: [" + strings.Repeat("*a,", MaxAliases) + "*a]\n", "more than 1000 aliases"},
		{"bomb", bomb, "expand to more than"},
		{"self reference", "a: &a [*a]\n", "contains it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("deploy/web.yaml", []byte(tt.in))
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.msg)
			require.True(t, strings.HasPrefix(err.Error(), "deploy/web.yaml"), err.Error())
		})
	}
}

func TestScalars(t *testing.T) {
	in := "\ufeffkind: Pod # c0\nspec:\n  a: &x !!str  v1 # {\"$imagepolicy\": \"ns:n\"}\n  b: 'it''s'\n  c: \"q\\\"x\"\n  d: [é, {e: f:g}]\n  lit: |\n    text\n  multi: one\n    two\n  \"k.y\": z\n  empty:\n---\nkind: X\nl:\r\n- 1\r\n"
	f, err := Parse("f.yaml", []byte(in))
	require.NoError(t, err)
	type row struct {
		Doc          int
		Kind, Path   string
		Value, Text  string
		Comment      string
		InFlow, Edit bool
	}
	var got []row
	for _, s := range f.Scalars() {
		r := row{Doc: s.Doc, Kind: s.Kind, Path: s.Path, Value: s.Value, Comment: s.Comment, InFlow: s.InFlow, Edit: s.Editable()}
		if s.Editable() {
			r.Text = in[s.Start:s.End]
		}
		got = append(got, r)
	}
	require.Equal(t, []row{
		{0, "Pod", "kind", "Pod", "Pod", "c0", false, true},
		{0, "Pod", "spec.a", "v1", "v1", `{"$imagepolicy": "ns:n"}`, false, true},
		{0, "Pod", "spec.b", "it's", "'it''s'", "", false, true},
		{0, "Pod", "spec.c", `q"x`, `"q\"x"`, "", false, true},
		{0, "Pod", "spec.d[0]", "é", "é", "", true, true},
		{0, "Pod", "spec.d[1].e", "f:g", "f:g", "", true, true},
		{0, "Pod", "spec.lit", "text\n", "", "", false, false},
		{0, "Pod", "spec.multi", "one two", "", "", false, false},
		{0, "Pod", `spec["k.y"]`, "z", "z", "", false, true},
		{0, "Pod", "spec.empty", "", "", "", false, false},
		{1, "X", "kind", "X", "X", "", false, true},
		{1, "X", "l[0]", "1", "1", "", false, true},
	}, got)

	s, err := f.Lookup(0, `spec["k.y"]`)
	require.NoError(t, err)
	require.Equal(t, "z", s.Value)
	_, err = f.Lookup(0, "spec.nope")
	require.ErrorContains(t, err, "f.yaml: document 0 has no scalar at spec.nope")
	lit, err := f.Lookup(0, "spec.lit")
	require.NoError(t, err)
	_, err = lit.Replace("x")
	require.ErrorContains(t, err, "block scalars")
}

func TestPath(t *testing.T) {
	for _, s := range []string{"a", "a.b", "a[0]", "spec.template.spec.containers[12].image", `metadata.annotations["a.b/c"]`, `["x[1]"].y`, "[0]", `[""]`} {
		t.Run(s, func(t *testing.T) {
			p, err := ParsePath(s)
			require.NoError(t, err)
			require.Equal(t, s, p.String())
		})
	}
	for _, s := range []string{"a..b", ".a", "a.", "a[x]", "a[", `a["x`, "a[-1]"} {
		t.Run("bad "+s, func(t *testing.T) {
			_, err := ParsePath(s)
			require.Error(t, err)
			require.Contains(t, err.Error(), fmt.Sprintf("%q", s))
		})
	}
}

func TestFormatScalar(t *testing.T) {
	tests := []struct {
		in, block, flow string
	}{
		{"1.25", `"1.25"`, `"1.25"`},
		{"1.10", `"1.10"`, `"1.10"`},
		{"2024", `"2024"`, `"2024"`},
		{"true", `"true"`, `"true"`},
		{"yes", `"yes"`, `"yes"`},
		{"null", `"null"`, `"null"`},
		{"~", `"~"`, `"~"`},
		{"0x1f", `"0x1f"`, `"0x1f"`},
		{"0755", `"0755"`, `"0755"`},
		{"1e3", `"1e3"`, `"1e3"`},
		{"1_000", `"1_000"`, `"1_000"`},
		{"1:20", `"1:20"`, `"1:20"`},
		{".inf", `".inf"`, `".inf"`},
		{"2024-01-02", `"2024-01-02"`, `"2024-01-02"`},
		{"", `""`, `""`},
		{"1.2.3", "1.2.3", "1.2.3"},
		{"v1.10", "v1.10", "v1.10"},
		{"nginx:1.25", "nginx:1.25", "nginx:1.25"},
		{"a,b", "a,b", `"a,b"`},
		{"a: b", `"a: b"`, `"a: b"`},
		{"a #b", `"a #b"`, `"a #b"`},
		{"-x", `"-x"`, `"-x"`},
		{"*x", `"*x"`, `"*x"`},
		{" x", `" x"`, `" x"`},
		{"x\ny", `"x\ny"`, `"x\ny"`},
		{`q"\`, `q"\`, `q"\`},
		{"\"q", `"\"q"`, `"\"q"`},
		{"\x01", `"\u0001"`, `"\u0001"`},
		{"\U0001F600", "\U0001F600", "\U0001F600"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			require.Equal(t, tt.block, FormatScalar(tt.in, false))
			require.Equal(t, tt.flow, FormatScalar(tt.in, true))
			for _, text := range []string{"k: " + tt.block, "k: [" + tt.flow + "]"} {
				var v map[string]any
				require.NoError(t, yaml.Unmarshal([]byte(text), &v), text)
				got := v["k"]
				if l, ok := got.([]any); ok {
					got = l[0]
				}
				require.Equal(t, tt.in, got, text)
			}
		})
	}
}

func TestReplaceKeepsQuoting(t *testing.T) {
	tests := []struct{ in, value, want string }{
		{"k: v\n", "1.10", "k: \"1.10\"\n"},
		{"k: 'v'\n", "it's", "k: 'it''s'\n"},
		{"k: 'v'\n", "a\nb", "k: \"a\\nb\"\n"},
		{"k: \"v\" # c\n", "x\"y", "k: \"x\\\"y\" # c\n"},
		{"k: \"a\n  b\"\n", "c", "k: \"c\"\n"},
		{"k: &a !!str v\n", "w", "k: &a !!str w\n"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			f, err := Parse("f.yaml", []byte(tt.in))
			require.NoError(t, err)
			sp, err := f.Replace(0, "k", tt.value)
			require.NoError(t, err)
			out, err := f.Apply(sp)
			require.NoError(t, err)
			require.Equal(t, tt.want, string(out))
		})
	}
}

func TestApply(t *testing.T) {
	data := []byte("0123456789")
	out, err := Apply(data, Splice{5, 6, "five"}, Splice{0, 0, ">"}, Splice{9, 10, ""})
	require.NoError(t, err)
	require.Equal(t, ">01234five678", string(out))
	_, err = Apply(data, Splice{1, 4, "a"}, Splice{3, 5, "b"})
	require.ErrorContains(t, err, "overlap")
	_, err = Apply(data, Splice{3, 3, "a"}, Splice{3, 3, "b"})
	require.ErrorContains(t, err, "overlap")
	_, err = Apply(data, Splice{3, 11, "a"})
	require.ErrorContains(t, err, "outside")
	require.Equal(t, "0123456789", string(data), "the input is not modified")

	f, err := Parse("f.yaml", []byte("a: b\n"))
	require.NoError(t, err)
	_, err = f.Apply(Splice{0, 0, "["})
	require.ErrorContains(t, err, "edit f.yaml would break it: f.yaml:")
}

func TestInsert(t *testing.T) {
	tests := []struct {
		name, in, want string
		do             func(*File) (Splice, error)
	}{
		{"key at end, no final newline", "a:\n  b: 1", "a:\n  b: 1\n  c: x\n",
			func(f *File) (Splice, error) { return f.InsertKey(0, "a", Field{"c", "x"}) }},
		{"key after nested value", "a:\n  b:\n    - 1\n  # note\nz: 2\n", "a:\n  b:\n    - 1\n  c: \"true\"\n  # note\nz: 2\n",
			func(f *File) (Splice, error) { return f.InsertKey(0, "a", Field{"c", "true"}) }},
		{"key before first when last is a block scalar", "a:\n  b: |\n    x\n", "a:\n  c: v\n  b: |\n    x\n",
			func(f *File) (Splice, error) { return f.InsertKey(0, "a", Field{"c", "v"}) }},
		{"key in compact sequence item", "- name: a\n  newTag: 1\n", "- name: a\n  newTag: 1\n  digest: d\n",
			func(f *File) (Splice, error) { return f.InsertKey(0, "[0]", Field{"digest", "d"}) }},
		{"entry matches dash indent", "images:\n  -   name: a\n", "images:\n  -   name: a\n  -   name: b\n      newTag: \"1.0\"\n",
			func(f *File) (Splice, error) {
				return f.AppendMapping(0, "images", []Field{{"name", "b"}, {"newTag", "1.0"}})
			}},
		{"new sequence key, CRLF", "kind: K\r\nresources:\r\n- a\r\n", "kind: K\r\nresources:\r\n- a\r\nimages:\r\n- name: b\r\n",
			func(f *File) (Splice, error) { return f.AppendMapping(0, "images", []Field{{"name", "b"}}) }},
		{"second document", "a: 1\n---\nb: 2\n...\n", "a: 1\n---\nb: 2\nc: 3x\n...\n",
			func(f *File) (Splice, error) { return f.InsertKey(1, "", Field{"c", "3x"}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("f.yaml", []byte(tt.in))
			require.NoError(t, err)
			sp, err := tt.do(f)
			require.NoError(t, err)
			out, err := f.Apply(sp)
			require.NoError(t, err)
			require.Equal(t, tt.want, string(out))
		})
	}
	f, err := Parse("f.yaml", []byte("a: {b: 1}\nc: []\n"))
	require.NoError(t, err)
	_, err = f.InsertKey(0, "a", Field{"x", "y"})
	require.ErrorContains(t, err, "f.yaml: document 0: a is not a non-empty block mapping")
	_, err = f.InsertKey(0, "", Field{"a", "y"})
	require.ErrorContains(t, err, "already has key a")
	_, err = f.AppendMapping(0, "c", []Field{{"x", "y"}})
	require.ErrorContains(t, err, "not a non-empty block sequence")
}

func TestFindImages(t *testing.T) {
	in := `apiVersion: batch/v1
kind: CronJob
spec:
  jobTemplate:
    spec:
      template:
        spec:
          initContainers:
          - image: busybox
          containers:
          - name: a
            image: ghcr.io/acme/web:1@` + digestA + `
          ephemeralContainers: [{image: "debug:2"}]
          volumes:
          - image: {reference: not-a-container}
---
kind: Whatever
spec:
  podTemplate:
    spec:
      containers:
      - image: "{{ .Values.image }}"
      - image: acme/crd:3 # {"$imagepolicy": "ns:crd"}
values:
  image: {repository: ghcr.io/x/y, tag: 1.0}
  custom:
    img: ghcr.io/z/z
    version: v2 # {"$imagepolicy": "ns:z:tag"}
`
	f, err := Parse("all.yaml", []byte(in))
	require.NoError(t, err)
	type row struct {
		Doc            int
		Path           string
		Source         Source
		Repo, Tag, Dig string
		Setter         string
	}
	rows := func(imgs []Image) []row {
		var out []row
		for _, i := range imgs {
			r := row{i.Doc, i.Path, i.Source, i.Repository, i.Tag, i.Digest, ""}
			if i.Setter != nil {
				r.Setter = i.Setter.Policy + "/" + i.Setter.Field
			}
			out = append(out, r)
		}
		return out
	}
	require.Equal(t, []row{
		{0, "spec.jobTemplate.spec.template.spec.initContainers[0].image", SourceWorkload, "busybox", "", "", ""},
		{0, "spec.jobTemplate.spec.template.spec.containers[0].image", SourceWorkload, "ghcr.io/acme/web", "1", digestA, ""},
		{0, "spec.jobTemplate.spec.template.spec.ephemeralContainers[0].image", SourceWorkload, "debug", "2", "", ""},
		{1, "spec.podTemplate.spec.containers[1].image", SourceWorkload, "acme/crd", "3", "", "ns:crd/"},
		{1, "values.image", SourceHelm, "ghcr.io/x/y", "1.0", "", ""},
		{1, "values.custom.img", SourceValuePath, "ghcr.io/z/z", "", "", ""},
		{1, "values.custom.version", SourceSetter, "", "v2", "", "ns:z/tag"},
	}, rows(f.FindImages(FindOptions{ValuePaths: []ValuePath{{Repository: "values.custom.img"}}})))

	k, err := Parse("overlay/kustomization.yaml", []byte("images:\n- name: nginx\n  newName: ghcr.io/acme/nginx\n  newTag: \"1.0\"\n- name: web\n  digest: "+digestA+"\n"))
	require.NoError(t, err)
	require.Equal(t, []row{
		{0, "images[0]", SourceKustomize, "ghcr.io/acme/nginx", "1.0", "", ""},
		{0, "images[1]", SourceKustomize, "web", "", digestA, ""},
	}, rows(k.FindImages(FindOptions{})))
}

// TestCorpus checks that every image reference in the real files is found.
func TestCorpus(t *testing.T) {
	want := map[string][]string{
		"podinfo/deployment.yaml":                         {"spec.template.spec.containers[0].image"},
		"podinfo/cronjob-backup-daily.yaml":               {"spec.jobTemplate.spec.template.spec.containers[0].image"},
		"podinfo/statefulset-primary.yaml":                {"spec.template.spec.containers[0].image"},
		"podinfo/values.yaml":                             {"image", "redis"},
		"flux2-kustomize-helm-example/release.yaml":       {"spec.values.redis"},
		"flux2-kustomize-helm-example/kustomization.yaml": nil,
		"flux2-kustomize-helm-example/cert-manager.yaml":  nil,
	}
	for name, paths := range want {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "corpus", name))
			require.NoError(t, err)
			f, err := Parse(name, data)
			require.NoError(t, err)
			var got []string
			for _, img := range f.FindImages(FindOptions{}) {
				got = append(got, img.Path)
			}
			require.Equal(t, paths, got)
			// Every scalar that was located reads back as its value.
			for _, s := range f.Scalars() {
				if s.Editable() && s.Style == 0 {
					require.Equal(t, s.Value, string(data[s.Start:s.End]), s.Path)
				}
			}
		})
	}
}

// multiDocCorpus concatenates the corpus files into one multi-document file.
func multiDocCorpus(tb testing.TB) []byte {
	var buf bytes.Buffer
	for _, name := range []string{"podinfo/deployment.yaml", "podinfo/cronjob-backup-daily.yaml", "podinfo/statefulset-primary.yaml", "flux2-kustomize-helm-example/release.yaml", "flux2-kustomize-helm-example/cert-manager.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", "corpus", name))
		require.NoError(tb, err)
		buf.WriteString("---\n")
		buf.Write(data)
	}
	return buf.Bytes()
}

func BenchmarkEdit(b *testing.B) {
	data := multiDocCorpus(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		f, err := Parse("bench.yaml", data)
		if err != nil {
			b.Fatal(err)
		}
		sp, err := setImage("ghcr.io/stefanprodan/podinfo", "6.15.0", digestA, FindOptions{})(f)
		if err != nil || len(sp) != 3 {
			b.Fatalf("%d splices, %v", len(sp), err)
		}
		if _, err := f.Apply(sp...); err != nil {
			b.Fatal(err)
		}
	}
}
