package yamledit

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
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
	// Aliased lists the other places that show this same reference
	// through an alias: its scalars are written once, at the anchor, so an
	// edit changes every one of them.
	Aliased []Use

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
//
// Files are read as a YAML reader sees them: a reference an alias (*a,
// - *a, <<: *a) shows is found at the alias's place. When aliases show the
// same reference at several places it is reported once, with the other
// places in Aliased: its scalars are those of the anchor, edited once.
func (f *File) FindImages(opts FindOptions) []Image {
	places := f.walkImagePlaces()
	set := imageSet{byStart: map[int][]placed{}}
	set.addAll(places.workloads)
	set.addAll(places.kustomize)
	set.addAll(places.helm)
	set.addAll(f.valuePathImages(opts.ValuePaths))
	set.addSetters(places.setters)
	return set.images
}

// candidate is an image reference found at one place, with the scalars
// that hold its parts (nil for a part the place does not set).
type candidate struct {
	img     Image
	scalars []*Scalar
}

// imagePlaces is what one walk of a file finds, by kind of place.
type imagePlaces struct {
	workloads, kustomize, helm, setters []candidate
}

// walkImagePlaces walks every document once, collecting workload images,
// kustomize entries, Helm pairs and values marked by a setter comment.
func (f *File) walkImagePlaces() imagePlaces {
	var p imagePlaces
	withSetters := bytes.Contains(f.data, []byte("$imagepolicy"))
	for i := range f.docs {
		d := &f.docs[i]
		kbase := kustomizeList(f.name, d)
		f.walk(d, func(n *yaml.Node, at *place) {
			switch n.Kind {
			case yaml.ScalarNode:
				f.scalarPlaces(&p, d, n, at, withSetters)
			case yaml.MappingNode:
				f.mappingPlaces(&p, kbase, n, at)
			}
		})
	}
	return p
}

// scalarPlaces adds scalar n to p when it is a container's image, and when
// a setter comment marks it.
func (f *File) scalarPlaces(p *imagePlaces, d *Document, n *yaml.Node, at *place, withSetters bool) {
	var s *Scalar
	if isWorkloadImage(at.path) {
		s = f.scalarAt(n, at)
		if r, err := imageref.Parse(s.Value); err == nil {
			p.workloads = append(p.workloads, candidate{Image{File: f.name, Doc: d.Index, Kind: d.Kind, Path: s.Path, Source: SourceWorkload,
				Repository: r.Name, Tag: r.Tag, Digest: r.Digest, Ref: s}, []*Scalar{s}})
		}
	}
	if !withSetters {
		return
	}
	if s == nil {
		if _, end, ok := f.spanAt(n, at); !ok || parseSetter(f.comment(end)) == nil {
			return
		}
		s = f.scalarAt(n, at)
	}
	if img, ok := setterImage(f.name, d, s); ok {
		p.setters = append(p.setters, candidate{img, []*Scalar{s}})
	}
}

// mappingPlaces adds mapping m to p when it is an entry of the document's
// kustomize images list (kbase), and when it is a Helm repository/tag pair
// (outside kustomizations).
func (f *File) mappingPlaces(p *imagePlaces, kbase Path, m *yaml.Node, at *place) {
	if kbase != nil && isItemOf(at.path, kbase) {
		if img, ok := f.kustomizeEntry(m, at); ok {
			p.kustomize = append(p.kustomize, candidate{img, []*Scalar{img.NameScalar, img.RepositoryScalar, img.TagScalar, img.DigestScalar}})
		}
	}
	if !IsKustomization(f.name) {
		if img, ok := f.helmPair(m, at); ok {
			p.helm = append(p.helm, candidate{img, []*Scalar{img.RepositoryScalar, img.TagScalar, img.DigestScalar}})
		}
	}
}

// valuePathImages reads the images at the user's value paths, path by
// path, document by document.
func (f *File) valuePathImages(vps []ValuePath) []candidate {
	var out []candidate
	for _, vp := range vps {
		for i := range f.docs {
			if c, ok := f.valuePathImage(&f.docs[i], vp); ok {
				out = append(out, c)
			}
		}
	}
	return out
}

// imageSet is the images found so far, indexed by the bytes of their
// scalars.
type imageSet struct {
	images  []Image
	byStart map[int][]placed
}

// placed is a scalar of image img at path.
type placed struct {
	img  int
	path string
}

// at returns the image holding scalar s at its place.
func (set *imageSet) at(s *Scalar) (int, bool) {
	for _, p := range set.byStart[s.Start] {
		if p.path == s.Path {
			return p.img, true
		}
	}
	return 0, false
}

// addAll adds each candidate, in order.
func (set *imageSet) addAll(cs []candidate) {
	for _, c := range cs {
		set.add(c)
	}
}

// add appends c's image unless one of its scalars was found at the same
// place already (by an earlier kind of place). When its scalars are
// exactly those of an image found before, shown at another place through
// an alias, it is that same reference again: its place is added to that
// image's Aliased.
func (set *imageSet) add(c candidate) {
	var editable []*Scalar
	var same []int // images holding every scalar of c so far
	for _, s := range c.scalars {
		if s == nil || !s.Editable() {
			continue
		}
		if _, ok := set.at(s); ok {
			return
		}
		var holders []int
		for _, p := range set.byStart[s.Start] {
			if len(editable) == 0 || slices.Contains(same, p.img) {
				holders = append(holders, p.img)
			}
		}
		same = holders
		editable = append(editable, s)
	}
	for _, j := range same {
		if len(editableScalars(set.images[j])) == len(editable) {
			set.images[j].Aliased = append(set.images[j].Aliased, Use{Doc: c.img.Doc, Path: c.img.Path, Alias: editable[0].Via})
			return
		}
	}
	for _, s := range editable {
		set.byStart[s.Start] = append(set.byStart[s.Start], placed{img: len(set.images), path: s.Path})
	}
	set.images = append(set.images, c.img)
}

// addSetters attaches each value marked by a setter comment to the image
// found holding it (keeping a marker it already has), or adds it alone.
func (set *imageSet) addSetters(cs []candidate) {
	for _, c := range cs {
		if j, ok := set.at(c.scalars[0]); ok {
			if set.images[j].Setter == nil {
				set.images[j].Setter = c.img.Setter
			}
			continue
		}
		set.add(c)
	}
}

func editableScalars(img Image) []*Scalar {
	var out []*Scalar
	for _, s := range img.Scalars() {
		if s.Editable() {
			out = append(out, s)
		}
	}
	return out
}

// Scalars returns the scalars that hold the reference's parts.
func (img Image) Scalars() []*Scalar {
	var out []*Scalar
	for _, s := range []*Scalar{img.Ref, img.NameScalar, img.RepositoryScalar, img.TagScalar, img.DigestScalar} {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// isWorkloadImage reports whether p is the image of a container:
// ...containers[i].image (or initContainers, ephemeralContainers).
func isWorkloadImage(p Path) bool {
	n := len(p)
	return n >= 3 && !p[n-1].IsIndex && p[n-1].Key == "image" && p[n-2].IsIndex && !p[n-3].IsIndex && containerLists[p[n-3].Key]
}

// kustomizeList is where document d keeps kustomize images entries: images
// in a kustomization, spec.images in a Flux Kustomization; nil otherwise.
func kustomizeList(filename string, d *Document) Path {
	switch {
	case IsKustomization(filename) || strings.HasPrefix(d.APIVersion, "kustomize.config.k8s.io/"):
		return Path{}.Key("images")
	case d.Kind == "Kustomization" && strings.HasPrefix(d.APIVersion, "kustomize.toolkit.fluxcd.io/"):
		return Path{}.Key("spec").Key("images")
	}
	return nil
}

// isItemOf reports whether p is an item of the list at base.
func isItemOf(p, base Path) bool {
	if len(p) != len(base)+1 || !p[len(base)].IsIndex {
		return false
	}
	for i, e := range base {
		if p[i] != e {
			return false
		}
	}
	return true
}

// part returns the scalar at key of mapping m (at place at), or nil.
func (f *File) part(m *yaml.Node, at *place, key string) *Scalar {
	v, vat := f.mapEntry(m, *at, key)
	if v == nil || v.Kind != yaml.ScalarNode {
		return nil
	}
	return f.scalarAt(v, &vat)
}

// kustomizeEntry reads a kustomize images entry.
func (f *File) kustomizeEntry(e *yaml.Node, at *place) (Image, bool) {
	name := f.part(e, at, "name")
	if name == nil {
		return Image{}, false
	}
	img := Image{File: f.name, Doc: at.doc.Index, Kind: at.doc.Kind, Path: at.path.String(), Source: SourceKustomize,
		Name: name.Value, Repository: name.Value, NameScalar: name,
		RepositoryScalar: f.part(e, at, "newName"), TagScalar: f.part(e, at, "newTag"), DigestScalar: f.part(e, at, "digest")}
	if img.RepositoryScalar != nil {
		img.Repository = img.RepositoryScalar.Value
	}
	if img.TagScalar != nil {
		img.Tag = img.TagScalar.Value
	}
	if img.DigestScalar != nil {
		img.Digest = img.DigestScalar.Value
	}
	return img, true
}

// helmPair reads a mapping with repository and tag scalars, as Helm values
// write an image.
func (f *File) helmPair(m *yaml.Node, at *place) (Image, bool) {
	repo, tag := f.part(m, at, "repository"), f.part(m, at, "tag")
	if repo == nil || tag == nil || repo.Value == "" {
		return Image{}, false
	}
	img := Image{File: f.name, Doc: at.doc.Index, Kind: at.doc.Kind, Path: at.path.String(), Source: SourceHelm,
		Repository: repo.Value, Tag: tag.Value, RepositoryScalar: repo, TagScalar: tag, DigestScalar: f.part(m, at, "digest")}
	if img.DigestScalar != nil {
		img.Digest = img.DigestScalar.Value
	}
	if r, _ := f.mapEntry(m, *at, "registry"); r != nil && r.Kind == yaml.ScalarNode {
		img.Registry = r.Value
	}
	return img, true
}

// valuePathImage reads the image at a user-given value path of document d.
func (f *File) valuePathImage(d *Document, vp ValuePath) (candidate, bool) {
	at := func(path string) *Scalar {
		if path == "" {
			return nil
		}
		p, err := ParsePath(path)
		if err != nil {
			return nil
		}
		n, pl := f.descend(d, p)
		if n == nil || n.Kind != yaml.ScalarNode {
			return nil
		}
		return f.scalarAt(n, &pl)
	}
	repo := at(vp.Repository)
	if repo == nil {
		return candidate{}, false
	}
	img := Image{File: f.name, Doc: d.Index, Kind: d.Kind, Path: repo.Path, Source: SourceValuePath}
	if vp.Tag == "" && vp.Digest == "" {
		r, err := imageref.Parse(repo.Value)
		if err != nil {
			return candidate{}, false
		}
		img.Repository, img.Tag, img.Digest, img.Ref = r.Name, r.Tag, r.Digest, repo
		return candidate{img, []*Scalar{repo}}, true
	}
	img.Repository, img.RepositoryScalar = repo.Value, repo
	if t := at(vp.Tag); t != nil {
		img.Tag, img.TagScalar = t.Value, t
	}
	if dg := at(vp.Digest); dg != nil {
		img.Digest, img.DigestScalar = dg.Value, dg
	}
	return candidate{img, []*Scalar{repo, img.TagScalar, img.DigestScalar}}, true
}

// setterImage reads a value marked by a Flux setter comment.
func setterImage(filename string, d *Document, s *Scalar) (Image, bool) {
	st := parseSetter(s.Comment)
	if st == nil {
		return Image{}, false
	}
	img := Image{File: filename, Doc: d.Index, Kind: d.Kind, Path: s.Path, Source: SourceSetter, Setter: st}
	switch st.Field {
	case "":
		r, err := imageref.Parse(s.Value)
		if err != nil {
			return Image{}, false
		}
		img.Repository, img.Tag, img.Digest, img.Ref = r.Name, r.Tag, r.Digest, s
	case "tag":
		img.Tag, img.TagScalar = s.Value, s
	case "name":
		img.Repository, img.RepositoryScalar = s.Value, s
	case "digest":
		img.Digest, img.DigestScalar = s.Value, s
	default:
		return Image{}, false
	}
	return img, true
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

// Setter returns the Flux marker in the comment after the scalar, or nil.
func (s *Scalar) Setter() *Setter { return parseSetter(s.Comment) }

// Marked reports whether a scalar of img is marked for the ImagePolicy
// policy ("namespace:name"), whole or by part.
func (img Image) Marked(policy string) bool {
	for _, s := range img.Scalars() {
		if st := s.Setter(); st != nil && st.Policy == policy {
			return true
		}
	}
	return false
}

// PolicyImage is the image a put writes for an ImagePolicy; a part left
// empty is not given.
type PolicyImage struct {
	Repository, Tag, Digest string
}

// SetMarked returns the splices that write the policy's image into every
// scalar of img marked for policy, whatever it holds, as Flux's image
// automation does, and img as it reads after them. A marker owns its
// field: a whole-reference marker takes the reference (its repository
// too, when to names another one; the same repository keeps its
// spelling), :name the repository, :tag the tag, :digest the digest, and
// a new tag without a digest clears a :digest field (the digest of the
// old tag would still pin the old image). A part to does not give is left
// as it is; scalars not marked for policy are never touched.
func (f *File) SetMarked(img Image, policy string, to PolicyImage) ([]Splice, Image, error) {
	after := img
	var out []Splice
	set := func(s *Scalar, value string) error {
		if s.Value == value {
			return nil
		}
		sp, err := s.Replace(value)
		out = append(out, sp)
		return err
	}
	for _, s := range img.Scalars() {
		st := s.Setter()
		if st == nil || st.Policy != policy {
			continue
		}
		var err error
		switch st.Field {
		case "":
			var r imageref.Ref
			if r, err = policyRef(s, to); err == nil {
				after.Repository, after.Tag, after.Digest = r.Name, r.Tag, r.Digest
				err = set(s, r.String())
			}
		case "name":
			if to.Repository == "" || imageref.SameRepository(s.Value, to.Repository) {
				continue
			}
			if s == img.NameScalar {
				after.Name = to.Repository
			}
			if s != img.NameScalar || img.RepositoryScalar == nil {
				after.Repository, after.Registry = to.Repository, ""
			}
			err = set(s, to.Repository)
		case "tag":
			if to.Tag == "" {
				continue
			}
			if err = imageref.ValidateTag(to.Tag); err == nil {
				after.Tag = to.Tag
				err = set(s, to.Tag)
			}
		case "digest":
			if to.Tag == "" && to.Digest == "" {
				continue
			}
			if to.Digest != "" {
				err = imageref.ValidateDigest(to.Digest)
			}
			if err == nil {
				after.Digest = to.Digest
				err = set(s, to.Digest)
			}
		}
		if err != nil {
			return nil, Image{}, fmt.Errorf("%s: document %d: %s (setter %s): %w", f.name, s.Doc, s.Path, st.Policy, err)
		}
	}
	return out, after, nil
}

// policyRef is the reference a whole-reference marker on s takes: the
// scalar's own, moved to to.Repository when that names another
// repository, with to's tag and digest.
func policyRef(s *Scalar, to PolicyImage) (imageref.Ref, error) {
	r, err := imageref.Parse(s.Value)
	if err != nil {
		return r, err
	}
	if to.Repository != "" && !imageref.SameRepository(r.Name, to.Repository) {
		if r, err = r.WithName(to.Repository); err != nil {
			return r, err
		}
	}
	return withParts(r, to.Tag, to.Digest)
}

// withParts returns r with tag and/or digest set (either may be empty): a
// new tag alone drops the digest pinned for the old one, a digest keeps
// the tag.
func withParts(r imageref.Ref, tag, digest string) (imageref.Ref, error) {
	var err error
	if tag != "" {
		if r, err = r.WithTag(tag); err != nil {
			return r, err
		}
	}
	if digest != "" {
		return r.WithDigest(digest)
	}
	return r, nil
}

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
		if r, err = withParts(r, tag, digest); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", f.name, img.Ref.Path, err)
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
