package yamledit

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// FuzzEdit checks the invariant of the package: for any input that parses,
// replacing one scalar changes no byte outside that scalar's span, and the
// result parses to the same documents with exactly that one value changed.
func FuzzEdit(f *testing.F) {
	for _, dir := range []string{"testdata/golden/*/in.yaml", "testdata/corpus/*/*.yaml"} {
		files, _ := filepath.Glob(dir)
		for _, name := range files {
			data, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data, uint16(len(data)), "1.10")
		}
	}
	f.Add([]byte("k: v\n"), uint16(0), "x: y # z")
	f.Fuzz(func(t *testing.T, data []byte, pick uint16, value string) {
		if len(data) > 64<<10 || !utf8.ValidString(value) {
			return
		}
		file, err := Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		var editable []Scalar
		for _, s := range file.Scalars() {
			if s.Editable() {
				editable = append(editable, s)
			}
		}
		if len(editable) == 0 {
			return
		}
		s := editable[int(pick)%len(editable)]
		if string(data[s.Start:s.End]) == "" {
			t.Fatalf("empty span for %s", s.Path)
		}
		sp, err := s.Replace(value)
		if err != nil {
			t.Fatalf("replace %s: %v", s.Path, err)
		}
		out, err := Apply(data, sp)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out[:s.Start], data[:s.Start]) || !bytes.Equal(out[len(out)-(len(data)-s.End):], data[s.End:]) {
			t.Fatalf("bytes outside [%d,%d) changed:\n%q\n%q", s.Start, s.End, data, out)
		}
		g, err := Parse("fuzz.yaml", out)
		if err != nil {
			t.Fatalf("setting %s to %q breaks the file: %v\nbefore: %q\nafter:  %q", s.Path, value, err, data, out)
		}
		if len(g.docs) != len(file.docs) {
			t.Fatalf("%d documents became %d:\n%q\n%q", len(file.docs), len(g.docs), data, out)
		}
		for i := range file.docs {
			if msg := sameTree(file.docs[i].Node, g.docs[i].Node, s.Node, value); msg != "" {
				t.Fatalf("document %d: setting %s to %q: %s\nbefore: %q\nafter:  %q", i, s.Path, value, msg, data, out)
			}
		}
	})
}

// sameTree compares two node trees; edited must read as value in b, every
// other node must be unchanged.
func sameTree(a, b, edited *yaml.Node, value string) string {
	if a.Kind != b.Kind || len(a.Content) != len(b.Content) || a.Anchor != b.Anchor {
		return "the shape changed at line " + itoa(a.Line)
	}
	if a.HeadComment != b.HeadComment || a.LineComment != b.LineComment || a.FootComment != b.FootComment {
		return "a comment changed at line " + itoa(a.Line) + ": " + a.LineComment + " / " + b.LineComment
	}
	if a == edited {
		if b.Value != value {
			return "the edited value reads as " + b.Value
		}
	} else if a.Value != b.Value || a.Tag != b.Tag || a.Style != b.Style {
		return "another value changed at line " + itoa(a.Line) + ": " + a.Value + " -> " + b.Value
	}
	for i := range a.Content {
		if msg := sameTree(a.Content[i], b.Content[i], edited, value); msg != "" {
			return msg
		}
	}
	return ""
}

func itoa(i int) string { return strconv.Itoa(i) }
