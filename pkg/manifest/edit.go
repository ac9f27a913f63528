package manifest

import (
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/gitops-resource/gitops-resource/pkg/imageref"
	"github.com/gitops-resource/gitops-resource/pkg/yamledit"
)

// Tree is the repository content an edit reads and writes:
// gitrepo.Snapshot, or a map in tests.
type Tree interface {
	// Names lists every file, in path order.
	Names() ([]string, error)
	ReadFile(name string) ([]byte, bool, error)
	WriteFile(name string, data []byte)
}

// Target is one image to set: Tag and/or Digest for every reference to
// Repository (or, with Setter, every value marked with that ImagePolicy).
type Target struct {
	Repository string
	Setter     string
	Tag        string
	Digest     string
}

// String is repository:tag@digest for logs.
func (t Target) String() string {
	s := t.Repository
	if s == "" {
		s = "setter " + t.Setter
	}
	if t.Tag != "" {
		s += ":" + t.Tag
	}
	if t.Digest != "" {
		s += "@" + t.Digest
	}
	return s
}

// ImageChange is one reference that was rewritten.
type ImageChange struct {
	Repository string // as the file spells it
	Name       string // the repository's last path element, e.g. web
	Old, New   string // tag[@digest] before and after
	File       string
	Path       string // the field path in the file
	Added      bool   // a kustomization images entry was added
}

// Editor finds and rewrites image references in a Tree.
type Editor struct {
	Tree       Tree
	ValuePaths []yamledit.ValuePath
	Log        io.Writer
}

// Found is an image reference with its file, for images.json.
type Found struct {
	File       string `json:"file"`
	Document   int    `json:"document"`
	Path       string `json:"path"`
	Kind       string `json:"kind,omitempty"`
	Repository string `json:"repository"`
	Tag        string `json:"tag,omitempty"`
	Digest     string `json:"digest,omitempty"`
	Source     string `json:"source"`
	Setter     string `json:"setter,omitempty"`
}

func (e *Editor) logf(format string, args ...any) {
	if e.Log != nil {
		fmt.Fprintf(e.Log, format+"\n", args...)
	}
}

// files lists the YAML files in scope, leaving out the templates of Helm
// charts (Go templates, not YAML).
func (e *Editor) files(scope pathSet) ([]string, error) {
	names, err := e.Tree.Names()
	if err != nil {
		return nil, fmt.Errorf("list files: %w", err)
	}
	var out []string
	for _, n := range names {
		if !isYAML(n) || !scope.Match(n) || e.isChartTemplate(n) {
			continue
		}
		out = append(out, n)
	}
	return out, nil
}

func (e *Editor) isChartTemplate(name string) bool {
	parts := strings.Split(name, "/")
	for i := len(parts) - 2; i >= 0; i-- {
		if parts[i] != "templates" {
			continue
		}
		if _, ok, _ := e.Tree.ReadFile(path.Join(append(parts[:i:i], "Chart.yaml")...)); ok {
			return true
		}
	}
	return false
}

func (e *Editor) parse(name string) (*yamledit.File, error) {
	data, ok, err := e.Tree.ReadFile(name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s does not exist", name)
	}
	return yamledit.Parse(name, data)
}

// Find lists every image reference in the YAML files in scope. A file that
// does not parse is an error naming it (and the line).
func (e *Editor) Find(scope pathSet) ([]Found, error) {
	names, err := e.files(scope)
	if err != nil {
		return nil, err
	}
	out := []Found{}
	var errs []error
	for _, n := range names {
		f, err := e.parse(n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, img := range f.FindImages(yamledit.FindOptions{ValuePaths: e.ValuePaths}) {
			fd := Found{File: n, Document: img.Doc, Path: img.Path, Kind: img.Kind, Repository: fullRepository(img),
				Tag: img.Tag, Digest: img.Digest, Source: string(img.Source)}
			if img.Setter != nil {
				fd.Setter = img.Setter.Policy
				if img.Setter.Field != "" {
					fd.Setter += ":" + img.Setter.Field
				}
			}
			out = append(out, fd)
		}
	}
	return out, errors.Join(errs...)
}

// fullRepository is the repository an image names, with a Helm values
// registry in front.
func fullRepository(img yamledit.Image) string {
	if img.Registry != "" && img.Repository != "" {
		return strings.TrimSuffix(img.Registry, "/") + "/" + img.Repository
	}
	return img.Repository
}

func matches(img yamledit.Image, t Target) bool {
	repo := fullRepository(img)
	if t.Setter != "" {
		if img.Setter == nil || img.Setter.Policy != t.Setter {
			return false
		}
		return t.Repository == "" || repo == "" || imageref.SameRepository(repo, t.Repository)
	}
	if repo == "" {
		return false
	}
	if imageref.SameRepository(repo, t.Repository) {
		return true
	}
	// A kustomize entry that renames an image is its entry all the same.
	return img.Source == yamledit.SourceKustomize && img.Name != "" && imageref.SameRepository(img.Name, t.Repository)
}

// Apply sets every target in the files in scope, staging each changed file
// once. When scope is limited, a kustomization in it that builds resources
// from outside scope which use a target's image, and that has no images
// entry for it, gets one (as `kustomize edit set image` adds it).
func (e *Editor) Apply(targets []Target, scope pathSet) ([]ImageChange, error) {
	names, err := e.files(scope)
	if err != nil {
		return nil, err
	}
	var changes []ImageChange
	// Every file is parsed, edited and dropped in turn (a parsed file is
	// ~20× its size: holding 2,000 of them made out's heap 24 MB), and
	// nothing is staged until every file parsed and every edit applied, so
	// a parse error anywhere still stops the run with every such error.
	var parseErrs, errs []error
	edited := map[string][]byte{}
	hasEntry := map[string]map[int]bool{} // kustomization file -> targets it already covers
	for _, n := range names {
		f, err := e.parse(n)
		if err != nil {
			parseErrs = append(parseErrs, err)
			continue
		}
		if len(parseErrs) > 0 {
			continue // only parse errors are reported then
		}
		var splices []yamledit.Splice
		for _, img := range f.FindImages(yamledit.FindOptions{ValuePaths: e.ValuePaths}) {
			first := -1
			for ti, t := range targets {
				if !matches(img, t) {
					continue
				}
				if img.Source == yamledit.SourceKustomize {
					if hasEntry[n] == nil {
						hasEntry[n] = map[int]bool{}
					}
					hasEntry[n][ti] = true
				}
				if first < 0 {
					first = ti
				}
			}
			// A reference that several targets match is set by the first.
			if first >= 0 {
				t := targets[first]
				sp, tag, digest, err := e.setImage(f, img, t)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if len(sp) == 0 {
					continue
				}
				splices = append(splices, sp...)
				newTag, newDigest := tag, digest
				if tag == "" {
					newTag = img.Tag // a digest alone keeps the tag
				}
				repo := fullRepository(img)
				if repo == "" {
					repo = t.Repository
				}
				if repo == "" {
					repo = t.Setter
				}
				changes = append(changes, ImageChange{Repository: repo, Name: shortName(repo),
					Old: describe(img.Tag, img.Digest), New: describe(newTag, newDigest), File: n, Path: img.Path})
			}
		}
		if len(splices) == 0 {
			continue
		}
		data, err := f.Apply(splices...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		edited[n] = data
	}
	if len(parseErrs) > 0 {
		return nil, errors.Join(parseErrs...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, n := range names {
		if data, ok := edited[n]; ok {
			e.Tree.WriteFile(n, data)
		}
	}
	if !scope.Limited() {
		return changes, nil
	}
	for _, n := range names {
		if !yamledit.IsKustomization(n) {
			continue
		}
		for ti, t := range targets {
			if t.Repository == "" || hasEntry[n][ti] {
				continue
			}
			added, err := e.addEntry(n, t, scope)
			if err != nil {
				return nil, err
			}
			changes = append(changes, added...)
		}
	}
	return changes, nil
}

// setImage rewrites one reference. Parts a values file does not have (no
// digest key beside repository and tag) are left out, with a warning.
func (e *Editor) setImage(f *yamledit.File, img yamledit.Image, t Target) ([]yamledit.Splice, string, string, error) {
	tag, digest := t.Tag, t.Digest
	if img.Ref == nil && img.Source != yamledit.SourceKustomize {
		if img.TagScalar == nil {
			tag = ""
		}
		if img.DigestScalar == nil && digest != "" {
			if img.TagScalar != nil {
				e.logf("warning: %s: %s has no digest key: only the tag is set", f.Name(), img.Path)
			}
			digest = ""
		}
		if tag == "" && digest == "" {
			return nil, "", "", nil
		}
	}
	sp, err := f.SetImage(img, tag, digest)
	return sp, tag, digest, err
}

// addEntry adds an images entry for t to the kustomization n when the
// resources it builds from outside scope use the image.
func (e *Editor) addEntry(n string, t Target, scope pathSet) ([]ImageChange, error) {
	used := e.reachable(path.Dir(n), map[string]bool{}, 0)
	var found *yamledit.Image
	for i, img := range used {
		if !scope.Match(img.File) && matches(img, Target{Repository: t.Repository}) {
			found = &used[i]
			break
		}
	}
	if found == nil {
		return nil, nil
	}
	f, err := e.parse(n)
	if err != nil {
		return nil, err
	}
	fields := []yamledit.Field{{Key: "name", Value: found.Repository}}
	if t.Tag != "" {
		fields = append(fields, yamledit.Field{Key: "newTag", Value: t.Tag})
	}
	if t.Digest != "" {
		fields = append(fields, yamledit.Field{Key: "digest", Value: t.Digest})
	}
	sp, err := f.AppendMapping(0, "images", fields)
	if err != nil {
		return nil, fmt.Errorf("%s: add an images entry for %s: %w", n, found.Repository, err)
	}
	data, err := f.Apply(sp)
	if err != nil {
		return nil, err
	}
	e.Tree.WriteFile(n, data)
	e.logf("%s builds %s from %s, outside the paths being edited: added an images entry for it", n, found.Repository, found.File)
	return []ImageChange{{Repository: found.Repository, Name: shortName(found.Repository), Old: describe(found.Tag, found.Digest),
		New: describe(t.Tag, t.Digest), File: n, Path: "images", Added: true}}, nil
}

// reachable lists the image references in the local resources, bases and
// components a kustomization in dir builds, following nested
// kustomizations. Remote resources are not followed.
func (e *Editor) reachable(dir string, seen map[string]bool, depth int) []yamledit.Image {
	if seen[dir] || depth > 20 {
		return nil
	}
	seen[dir] = true
	var kf *yamledit.File
	for _, k := range []string{"kustomization.yaml", "kustomization.yml", "Kustomization"} {
		if f, err := e.parse(path.Join(dir, k)); err == nil {
			kf = f
			break
		}
	}
	if kf == nil || len(kf.Documents()) == 0 {
		return nil
	}
	root := kf.Documents()[0].Node
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	var out []yamledit.Image
	for _, key := range []string{"resources", "bases", "components"} {
		list := mapValue(root, key)
		if list == nil || list.Kind != yaml.SequenceNode {
			continue
		}
		for _, item := range list.Content {
			if item.Kind != yaml.ScalarNode || strings.Contains(item.Value, "://") || strings.HasPrefix(item.Value, "github.com/") {
				continue
			}
			p := path.Clean(path.Join(dir, item.Value))
			if p == ".." || strings.HasPrefix(p, "../") {
				continue
			}
			if isYAML(p) {
				if f, err := e.parse(p); err == nil {
					out = append(out, f.FindImages(yamledit.FindOptions{ValuePaths: e.ValuePaths})...)
					continue
				}
			}
			out = append(out, e.reachable(p, seen, depth+1)...)
		}
	}
	return out
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// PromoteTargets reads the image references under from: one target per
// repository. A repository set to two different values there is an error.
func (e *Editor) PromoteTargets(from string) ([]Target, error) {
	found, err := e.Find(pathSet{include: []string{from}})
	if err != nil {
		return nil, err
	}
	byRepo := map[string]int{}
	var out []Target
	for _, fd := range found {
		if fd.Repository == "" || (fd.Tag == "" && fd.Digest == "") {
			continue
		}
		key := imageref.Canonical(fd.Repository)
		t := Target{Repository: fd.Repository, Tag: fd.Tag, Digest: fd.Digest}
		if i, ok := byRepo[key]; ok {
			if out[i].Tag != t.Tag || out[i].Digest != t.Digest {
				return nil, fmt.Errorf("promote: %s sets %s to both %s and %s: make them agree first", from, fd.Repository, describe(out[i].Tag, out[i].Digest), describe(t.Tag, t.Digest))
			}
			continue
		}
		byRepo[key] = len(out)
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("promote: no image references found under %s", from)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Repository < out[j].Repository })
	return out, nil
}

func describe(tag, digest string) string {
	switch {
	case tag != "" && digest != "":
		return tag + "@" + digest
	case digest != "":
		return digest
	}
	return tag
}

func shortName(repo string) string {
	r, err := imageref.Parse(repo)
	if err == nil {
		repo = r.Name
	}
	return path.Base(repo)
}
