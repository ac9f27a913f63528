package yamledit

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/gitops-resource/gitops-resource/pkg/imageref"
	"go.yaml.in/yaml/v3"
)

// Source says how an image reference was recognised.
type Source string

// The places image references are found.
const (
	// SourceWorkload is an image: field of a container in a pod spec, at any depth.
	SourceWorkload Source = "workload"
	// SourceKustomize is an entry of a kustomization's images: list.
	SourceKustomize Source = "kustomize"
	// SourceHelm is a mapping with repository and tag keys, as Helm values write an image.
	SourceHelm Source = "helm"
	// SourceValuePath is a reference at a path the user named.
	SourceValuePath Source = "value-path"
	// SourceSetter is a value marked only by a Flux setter comment.
	SourceSetter Source = "setter"
)

// Setter is a Flux image-automation marker, # {"$imagepolicy": "ns:name[:field]"}.
type Setter struct {
	// Policy is "namespace:name" of the ImagePolicy.
	Policy string
	// Field is "" when the value is a whole reference, else "tag", "name" or "digest".
	Field string
}

// Image is an image reference found in a file, with the scalars that hold its parts.
type Image struct {
	File   string
	Doc    int
	Kind   string // the document's top-level kind
	Path   string // the scalar holding the reference, or the mapping holding its parts
	Source Source

	// Repository, Tag and Digest are the reference as the file sets it. For a
	// kustomize entry Repository is newName when set, else name.
	Repository, Tag, Digest string
	// Registry is a Helm values registry: key beside repository, when present.
	Registry string
	// Name is a kustomize entry's name: the image it rewrites.
	Name string
	// Setter is the Flux marker on the reference, when it has one.
	Setter *Setter

	// Ref holds the whole reference (workload image:, whole-reference value
	// paths and setters). The other scalars hold one part each; a part the
	// file does not set is nil.
	Ref, RepositoryScalar, NameScalar, TagScalar, DigestScalar *Scalar
}

// ValuePath names where a values file keeps an image: Repository alone is a
// scalar holding a whole reference; with Tag (and Digest) they hold the parts.
type ValuePath struct {
	Repository, Tag, Digest string
}

// FindOptions adds user-given knowledge to FindImages.
type FindOptions struct {
	ValuePaths []ValuePath
}

var (
	containerLists = map[string]bool{"containers": true, "initContainers": true, "ephemeralContainers": true}
	imagePolicy    = regexp.MustCompile(`\{\s*"\$imagepolicy"\s*:\s*"([^"]+)"\s*\}`)
)

// IsKustomization reports whether a file name is one kustomize reads as a kustomization.
func IsKustomization(filename string) bool {
	switch filepath.Base(filename) {
	case "kustomization.yaml", "kustomization.yml", "Kustomization":
		return true
	}
	return false
}

// FindImages returns every image reference in the file, in file order per
// kind of place: workload images, kustomize entries, Helm pairs, value
// paths, then values marked only by a setter comment. A value that is not a
// valid reference (a template, an empty string) is not reported.
func (f *File) FindImages(opts FindOptions) []Image {
	var out []Image
	byStart := map[int]int{} // scalar start offset -> index in out
	add := func(img Image, scalars ...*Scalar) {
		for _, s := range scalars {
			if s != nil && s.Editable() {
				if _, dup := byStart[s.Start]; dup {
					return
				}
			}
		}
		for _, s := range scalars {
			if s != nil && s.Editable() {
				byStart[s.Start] = len(out)
			}
		}
		out = append(out, img)
	}
	scalars := f.Scalars()
	index := map[docPathKey]*Scalar{}
	for i := range scalars {
		s := &scalars[i]
		index[docPath(s.Doc, s.Path)] = s
	}

	// 1. Workload images.
	for i := range scalars {
		s := &scalars[i]
		p, _ := ParsePath(s.Path)
		n := len(p)
		if n < 3 || p[n-1].IsIndex || p[n-1].Key != "image" || !p[n-2].IsIndex || p[n-3].IsIndex || !containerLists[p[n-3].Key] {
			continue
		}
		r, err := imageref.Parse(s.Value)
		if err != nil {
			continue
		}
		add(Image{File: f.name, Doc: s.Doc, Kind: s.Kind, Path: s.Path, Source: SourceWorkload,
			Repository: r.Name, Tag: r.Tag, Digest: r.Digest, Ref: s}, s)
	}

	// 2. Kustomize images entries.
	for _, d := range f.docs {
		root := docRoot(d.Node)
		var list *yaml.Node
		var base Path
		switch {
		case IsKustomization(f.name) || strings.HasPrefix(d.APIVersion, "kustomize.config.k8s.io/"):
			list, base = mapValue(root, "images"), Path{}.Key("images")
		case d.Kind == "Kustomization" && strings.HasPrefix(d.APIVersion, "kustomize.toolkit.fluxcd.io/"):
			list, base = mapValue(mapValue(root, "spec"), "images"), Path{}.Key("spec").Key("images")
		}
		if list == nil || list.Kind != yaml.SequenceNode {
			continue
		}
		for i, e := range list.Content {
			if e.Kind != yaml.MappingNode {
				continue
			}
			p := base.Index(i)
			get := func(k string) *Scalar { return index[docPath(d.Index, p.Key(k).String())] }
			name := get("name")
			if name == nil {
				continue
			}
			img := Image{File: f.name, Doc: d.Index, Kind: d.Kind, Path: p.String(), Source: SourceKustomize,
				Name: name.Value, Repository: name.Value, NameScalar: name,
				RepositoryScalar: get("newName"), TagScalar: get("newTag"), DigestScalar: get("digest")}
			if img.RepositoryScalar != nil {
				img.Repository = img.RepositoryScalar.Value
			}
			if img.TagScalar != nil {
				img.Tag = img.TagScalar.Value
			}
			if img.DigestScalar != nil {
				img.Digest = img.DigestScalar.Value
			}
			add(img, name, img.RepositoryScalar, img.TagScalar, img.DigestScalar)
		}
	}

	// 3. Helm values pairs: a mapping with repository and tag scalars.
	for _, d := range f.docs {
		if IsKustomization(f.name) {
			break
		}
		var visit func(n *yaml.Node, p Path)
		visit = func(n *yaml.Node, p Path) {
			switch n.Kind {
			case yaml.MappingNode:
				repo, tag := mapValue(n, "repository"), mapValue(n, "tag")
				if repo != nil && tag != nil && repo.Kind == yaml.ScalarNode && tag.Kind == yaml.ScalarNode && repo.Value != "" {
					get := func(k string) *Scalar { return index[docPath(d.Index, p.Key(k).String())] }
					img := Image{File: f.name, Doc: d.Index, Kind: d.Kind, Path: p.String(), Source: SourceHelm,
						Repository: repo.Value, Tag: tag.Value,
						RepositoryScalar: get("repository"), TagScalar: get("tag"), DigestScalar: get("digest")}
					if img.DigestScalar != nil {
						img.Digest = img.DigestScalar.Value
					}
					if r := mapValue(n, "registry"); r != nil && r.Kind == yaml.ScalarNode {
						img.Registry = r.Value
					}
					add(img, img.RepositoryScalar, img.TagScalar, img.DigestScalar)
				}
				for i := 0; i+1 < len(n.Content); i += 2 {
					if k := n.Content[i]; k.Kind == yaml.ScalarNode {
						visit(n.Content[i+1], p.Key(k.Value))
					}
				}
			case yaml.SequenceNode:
				for i, c := range n.Content {
					visit(c, p.Index(i))
				}
			}
		}
		if root := docRoot(d.Node); root != nil {
			visit(root, nil)
		}
	}

	// 4. Explicit value paths.
	for _, vp := range opts.ValuePaths {
		for _, d := range f.docs {
			at := func(path string) *Scalar {
				if path == "" {
					return nil
				}
				p, err := ParsePath(path)
				if err != nil {
					return nil
				}
				return index[docPath(d.Index, p.String())]
			}
			repo := at(vp.Repository)
			if repo == nil {
				continue
			}
			img := Image{File: f.name, Doc: d.Index, Kind: d.Kind, Path: repo.Path, Source: SourceValuePath}
			if vp.Tag == "" && vp.Digest == "" {
				r, err := imageref.Parse(repo.Value)
				if err != nil {
					continue
				}
				img.Repository, img.Tag, img.Digest, img.Ref = r.Name, r.Tag, r.Digest, repo
				add(img, repo)
				continue
			}
			img.Repository, img.RepositoryScalar = repo.Value, repo
			if t := at(vp.Tag); t != nil {
				img.Tag, img.TagScalar = t.Value, t
			}
			if dg := at(vp.Digest); dg != nil {
				img.Digest, img.DigestScalar = dg.Value, dg
			}
			add(img, repo, img.TagScalar, img.DigestScalar)
		}
	}

	// 5. Flux setter comments: attach to what was found, or report alone.
	for i := range scalars {
		s := &scalars[i]
		st := parseSetter(s.Comment)
		if st == nil {
			continue
		}
		if j, ok := byStart[s.Start]; ok {
			if out[j].Setter == nil {
				out[j].Setter = st
			}
			continue
		}
		img := Image{File: f.name, Doc: s.Doc, Kind: s.Kind, Path: s.Path, Source: SourceSetter, Setter: st}
		switch st.Field {
		case "":
			r, err := imageref.Parse(s.Value)
			if err != nil {
				continue
			}
			img.Repository, img.Tag, img.Digest, img.Ref = r.Name, r.Tag, r.Digest, s
		case "tag":
			img.Tag, img.TagScalar = s.Value, s
		case "name":
			img.Repository, img.RepositoryScalar = s.Value, s
		case "digest":
			img.Digest, img.DigestScalar = s.Value, s
		default:
			continue
		}
		add(img, s)
	}
	return out
}

// parseSetter reads a Flux marker from a comment, or returns nil.
func parseSetter(comment string) *Setter {
	if comment == "" {
		return nil
	}
	m := imagePolicy.FindStringSubmatch(comment)
	if m == nil {
		return nil
	}
	parts := strings.Split(m[1], ":")
	switch len(parts) {
	case 2:
		return &Setter{Policy: m[1]}
	case 3:
		return &Setter{Policy: parts[0] + ":" + parts[1], Field: parts[2]}
	}
	return nil
}

type docPathKey struct {
	doc  int
	path string
}

func docPath(doc int, path string) docPathKey { return docPathKey{doc, path} }

// SetImage returns the splices that point img at tag and/or digest (either
// may be empty, not both). A whole reference keeps its name as written; a
// new tag alone drops a stale digest, a digest keeps the tag. A kustomize
// entry gets newTag or digest keys added when it lacks them; a stale digest
// part is set to "".
func (f *File) SetImage(img Image, tag, digest string) ([]Splice, error) {
	if tag == "" && digest == "" {
		return nil, fmt.Errorf("set image %s: give a tag or a digest", img.Repository)
	}
	if img.Ref != nil {
		r, err := imageref.Parse(img.Ref.Value)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", f.name, img.Ref.Path, err)
		}
		if tag != "" {
			if r, err = r.WithTag(tag); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", f.name, img.Ref.Path, err)
			}
		}
		if digest != "" {
			if r, err = r.WithDigest(digest); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", f.name, img.Ref.Path, err)
			}
		}
		if r.String() == img.Ref.Value {
			return nil, nil
		}
		sp, err := img.Ref.Replace(r.String())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		return []Splice{sp}, nil
	}
	var out []Splice
	var missing []Field
	set := func(s *Scalar, key, value string) error {
		if s != nil {
			if s.Value == value {
				return nil
			}
			sp, err := s.Replace(value)
			if err != nil {
				return fmt.Errorf("%s: %w", f.name, err)
			}
			out = append(out, sp)
			return nil
		}
		if value == "" {
			return nil
		}
		if img.Source != SourceKustomize {
			return fmt.Errorf("%s: document %d: %s has no %s to set", f.name, img.Doc, img.Path, key)
		}
		missing = append(missing, Field{Key: key, Value: value})
		return nil
	}
	tagKey := "tag"
	if img.Source == SourceKustomize {
		tagKey = "newTag"
	}
	if tag != "" {
		if err := imageref.ValidateTag(tag); err != nil {
			return nil, fmt.Errorf("set image %s: %w", img.Repository, err)
		}
		if err := set(img.TagScalar, tagKey, tag); err != nil {
			return nil, err
		}
	}
	if digest != "" {
		if err := imageref.ValidateDigest(digest); err != nil {
			return nil, fmt.Errorf("set image %s: %w", img.Repository, err)
		}
	}
	if digest != "" || img.Digest != "" {
		// Only a tag given: a digest pinned for the old tag would win, so clear it.
		if err := set(img.DigestScalar, "digest", digest); err != nil {
			return nil, err
		}
	}
	if len(missing) > 0 {
		lines := make([]string, len(missing))
		for i, m := range missing {
			if _, err := f.node(img.Doc, mustPath(img.Path).Key(m.Key)); err == nil {
				return nil, fmt.Errorf("%s: document %d: %s.%s is not a scalar", f.name, img.Doc, img.Path, m.Key)
			}
			lines[i] = m.Key + ": " + FormatScalar(m.Value, false)
		}
		sp, err := f.insertKeyLines(img.Doc, img.Path, missing[0].Key, lines)
		if err != nil {
			return nil, err
		}
		out = append(out, sp)
	}
	return out, nil
}

func mustPath(s string) Path {
	p, _ := ParsePath(s)
	return p
}
