package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"go.yaml.in/yaml/v3"

	"github.com/gitops-resource/gitops-resource/pkg/imageref"
	"github.com/gitops-resource/gitops-resource/pkg/resource"
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
// Repository; or, with Setter, the image Repository:Tag@Digest (each part
// optional) written into every value marked for that ImagePolicy, whatever
// it holds (yamledit.File.SetMarked).
type Target struct {
	Repository string
	Setter     string
	Tag        string
	Digest     string
	// Param names where the target comes from in messages: params.images[0].
	Param string
	// Optional: the target may appear nowhere in scope (a promoted image
	// the destination does not use), as long as some target of the edit
	// appears.
	Optional bool
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
	// Through lists the lines of the aliases that show the reference at
	// other places too; the edit is written once, at its anchor on Line.
	Through []int
	Line    int
	From    string // Added: the file outside scope that uses the image
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
	f, err := yamledit.Parse(name, data)
	var limit *yamledit.LimitError
	if errors.As(err, &limit) {
		return nil, fmt.Errorf("%w: leave it out with source.ignore_paths", err)
	}
	return f, err
}

// Find lists every image reference in the YAML files in scope. A file that
// does not parse is an error naming it (and the line). The files are parsed
// findWorkers at a time (parsing is CPU, and In runs it beside a checkout);
// the answer keeps the files' order.
func (e *Editor) Find(scope pathSet) ([]Found, error) {
	names, err := e.files(scope)
	if err != nil {
		return nil, err
	}
	type result struct {
		found []Found
		err   error
	}
	results := make([]result, len(names))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(findWorkers, runtime.GOMAXPROCS(0), len(names)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(names); i = int(next.Add(1) - 1) {
				results[i].found, results[i].err = e.findIn(names[i])
			}
		})
	}
	wg.Wait()
	out := []Found{}
	var errs []error
	for _, r := range results {
		out = append(out, r.found...)
		if r.err != nil {
			errs = append(errs, r.err)
		}
	}
	return out, errors.Join(errs...)
}

// findWorkers is how many files Find parses at once. It bounds the memory
// of a hostile tree too: a parse may take up to yamledit.MaxNodes nodes, so
// at most this many such trees are alive at a time.
const findWorkers = 2

// findIn lists the image references in one file.
func (e *Editor) findIn(name string) ([]Found, error) {
	f, err := e.parse(name)
	if err != nil {
		return nil, err
	}
	var out []Found
	for _, img := range f.FindImages(yamledit.FindOptions{ValuePaths: e.ValuePaths}) {
		fd := Found{File: name, Document: img.Doc, Path: img.Path, Kind: img.Kind, Repository: fullRepository(img),
			Tag: img.Tag, Digest: img.Digest, Source: string(img.Source)}
		if img.Setter != nil {
			fd.Setter = img.Setter.Policy
			if img.Setter.Field != "" {
				fd.Setter += ":" + img.Setter.Field
			}
		}
		out = append(out, fd)
	}
	return out, nil
}

// fullRepository is the repository an image names, with a Helm values
// registry in front.
func fullRepository(img yamledit.Image) string {
	if img.Registry != "" && img.Repository != "" {
		return strings.TrimSuffix(img.Registry, "/") + "/" + img.Repository
	}
	return img.Repository
}

// matches reports whether t sets img: a reference to its repository, or,
// with a setter, a reference marked for it (a marker owns its field,
// whatever repository it names).
func matches(img yamledit.Image, t Target) bool {
	if t.Setter != "" {
		return img.Marked(t.Setter)
	}
	repo := fullRepository(img)
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
//
// A target that appears nowhere in scope is an error naming it and the
// repositories (or setters) nearest to it that do appear, and nothing is
// staged; one already as requested is simply unchanged. An Optional target
// may be missing as long as another target of the edit appears.
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
	st := &applyState{found: make([]bool, len(targets)), hasEntry: map[string]map[int]bool{}, seen: newInventory()}
	for _, n := range names {
		f, err := e.parse(n)
		if err != nil {
			if e.mentionsNone(n, err, targets) {
				e.logf("warning: %v: it names none of the images being set, so it is left as is", err)
				continue
			}
			parseErrs = append(parseErrs, err)
			continue
		}
		if len(parseErrs) > 0 {
			continue // only parse errors are reported then
		}
		splices, ch, err := e.editFile(f, targets, st)
		if err != nil {
			errs = append(errs, err)
			continue
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
		changes = append(changes, ch...)
	}
	if len(parseErrs) > 0 {
		return nil, errors.Join(parseErrs...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var added []ImageChange
	if scope.Limited() {
		for _, n := range names {
			if !yamledit.IsKustomization(n) {
				continue
			}
			for ti, t := range targets {
				if t.Repository == "" || st.hasEntry[n][ti] {
					continue
				}
				ch, data, err := e.addEntry(n, t, scope, edited)
				if err != nil {
					return nil, err
				}
				if ch != nil {
					st.found[ti] = true
					edited[n] = data
					added = append(added, *ch)
				}
			}
		}
	}
	if err := e.missing(targets, st, scope, len(names)); err != nil {
		return nil, err
	}
	for _, n := range names {
		if data, ok := edited[n]; ok {
			e.Tree.WriteFile(n, data)
		}
	}
	for _, c := range added {
		e.logf("%s builds %s from %s, outside the paths being edited: added an images entry for it", c.File, c.Repository, c.From)
	}
	return append(changes, added...), nil
}

// mentionsNone reports whether err refuses file n for its size (a
// yamledit.LimitError) and n's text holds none of what every spelling of a
// target's reference holds (needle): a large CRD bundle in scope never
// stops a put that cannot concern it, while one that may hold an image
// being set fails the put rather than be skipped unread.
func (e *Editor) mentionsNone(n string, err error, targets []Target) bool {
	var limit *yamledit.LimitError
	if !errors.As(err, &limit) {
		return false
	}
	data, _, err := e.Tree.ReadFile(n)
	if err != nil {
		return false
	}
	for _, t := range targets {
		if bytes.Contains(data, []byte(t.needle())) {
			return false
		}
	}
	return true
}

// needle is text that every spelling of t's reference in a file holds: the
// setter's policy (in its marker), or the repository's path without its
// registry and without Docker Hub's "library/" (nginx, library/nginx and
// docker.io/library/nginx all hold "nginx").
func (t Target) needle() string {
	if t.Repository == "" {
		return t.Setter
	}
	_, p, _ := strings.Cut(imageref.Canonical(t.Repository), "/")
	return strings.TrimPrefix(p, "library/")
}

// applyState is what Apply learns file by file.
type applyState struct {
	found    []bool                  // target i appears in scope
	hasEntry map[string]map[int]bool // kustomization file -> targets it already covers
	seen     inventory
}

// inventory is what appears in scope, to name what a missing target is
// nearest to.
type inventory struct {
	repos   map[string]string // canonical -> as first spelled
	setters map[string]bool
}

func newInventory() inventory {
	return inventory{repos: map[string]string{}, setters: map[string]bool{}}
}

func (v inventory) add(img yamledit.Image) {
	for _, r := range []string{fullRepository(img), img.Name} {
		if r == "" {
			continue
		}
		if _, ok := v.repos[imageref.Canonical(r)]; !ok {
			v.repos[imageref.Canonical(r)] = r
		}
	}
	for _, s := range img.Scalars() {
		if st := s.Setter(); st != nil {
			v.setters[st.Policy] = true
		}
	}
}

// editFile returns the splices that set the targets in one file and the
// changes they make, noting in st which targets appear.
func (e *Editor) editFile(f *yamledit.File, targets []Target, st *applyState) ([]yamledit.Splice, []ImageChange, error) {
	imgs := f.FindImages(yamledit.FindOptions{ValuePaths: e.ValuePaths})
	// setBy[i] is the target that sets imgs[i]: the first that matches it.
	setBy := make([]int, len(imgs))
	for i, img := range imgs {
		st.seen.add(img)
		setBy[i] = -1
		for ti, t := range targets {
			if !matches(img, t) {
				continue
			}
			st.found[ti] = true
			if img.Source == yamledit.SourceKustomize {
				if st.hasEntry[f.Name()] == nil {
					st.hasEntry[f.Name()] = map[int]bool{}
				}
				st.hasEntry[f.Name()][ti] = true
			}
			if setBy[i] < 0 {
				setBy[i] = ti
			}
		}
	}
	var splices []yamledit.Splice
	var changes []ImageChange
	var errs []error
	for i, img := range imgs {
		if setBy[i] < 0 {
			continue
		}
		t := targets[setBy[i]]
		set := e.setImage
		if t.Setter != "" {
			set = e.setMarked
		}
		sp, after, err := set(f, img, t)
		if err == nil && len(sp) > 0 {
			err = checkAliases(f, imgs, setBy, i, sp)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(sp) == 0 {
			continue
		}
		splices = append(splices, sp...)
		repo := fullRepository(img)
		if repo == "" {
			repo = t.Repository
		}
		if repo == "" {
			repo = t.Setter
		}
		c := ImageChange{Repository: repo, Name: shortName(repo), Old: describe(img.Tag, img.Digest), New: describe(after.Tag, after.Digest), File: f.Name(), Path: img.Path}
		if moved := fullRepository(after); moved != fullRepository(img) && moved != "" {
			c.New = imageref.Ref{Name: moved, Tag: after.Tag, Digest: after.Digest}.String() // another repository: the change names it
		}
		if through := aliasLines(img); len(through) > 0 {
			c.Through, c.Line = through, img.Scalars()[0].Line()
		}
		changes = append(changes, c)
	}
	return splices, changes, errors.Join(errs...)
}

// aliasLines lists the lines of the aliases through which the reference is
// shown, at its own place or at others.
func aliasLines(img yamledit.Image) []int {
	var out []int
	for _, s := range img.Scalars() {
		if s.Via != 0 && !slices.Contains(out, s.Via) {
			out = append(out, s.Via)
		}
	}
	for _, u := range img.Aliased {
		if u.Alias != 0 && !slices.Contains(out, u.Alias) {
			out = append(out, u.Alias)
		}
	}
	sort.Ints(out)
	return out
}

// checkAliases refuses an edit of a value that aliases show elsewhere too,
// unless each place showing it is a reference the same target sets, or
// the anchor itself outside any reference (a template). An anchor is
// written once: editing it edits every alias of it.
func checkAliases(f *yamledit.File, imgs []yamledit.Image, setBy []int, i int, sp []yamledit.Splice) error {
	img := imgs[i]
	var nodes []*yaml.Node
	for _, s := range img.Scalars() {
		if s.Shared && touched(s, sp) {
			nodes = append(nodes, s.Node)
		}
	}
	if len(nodes) == 0 {
		return nil
	}
	var same, any []string // places of the references set by the same target, of all of them
	for j, o := range imgs {
		places := []string{o.Path}
		for _, u := range o.Aliased {
			places = append(places, u.Path)
		}
		any = append(any, places...)
		if setBy[j] == setBy[i] {
			same = append(same, places...)
		}
	}
	uses := f.Uses(img.Doc, nodes...)
	for _, s := range img.Scalars() {
		for _, u := range uses[s.Node] {
			if within(u.Path, same) || u.Alias == 0 && !within(u.Path, any) {
				continue
			}
			where := fmt.Sprintf("%s (line %d, through an alias)", u.Path, u.Alias)
			if u.Alias == 0 {
				where = fmt.Sprintf("%s (the anchor itself)", u.Path)
			}
			repo := imageName(img)
			return fmt.Errorf("%s:%d: %s (%s) is written once, at this anchor, and %s shows it too, which is not a reference to %s: "+
				"setting it would change both; give %s a value of its own", f.Name(), s.Line(), s.Path, repo, where, repo, s.Path)
		}
	}
	return nil
}

// touched reports whether a splice replaces s, or inserts (a key added to
// the mapping holding s).
func touched(s *yamledit.Scalar, sp []yamledit.Splice) bool {
	for _, p := range sp {
		if p.Start == p.End || p.Start < s.End && s.Start < p.End {
			return true
		}
	}
	return false
}

// within reports whether path is one of places or inside one.
func within(path string, places []string) bool {
	for _, p := range places {
		if path == p || strings.HasPrefix(path, p+".") || strings.HasPrefix(path, p+"[") {
			return true
		}
	}
	return false
}

// imageName names the image of img in messages.
func imageName(img yamledit.Image) string {
	if r := fullRepository(img); r != "" {
		return r
	}
	if img.Setter != nil {
		return "setter " + img.Setter.Policy
	}
	return "the image"
}

// missing returns an error naming each target that appears nowhere in
// scope, with what is nearest to it there. Optional targets are only
// logged, unless none of the targets appears.
func (e *Editor) missing(targets []Target, st *applyState, scope pathSet, files int) error {
	var errs, optional []error
	anyFound := false
	for ti, t := range targets {
		if st.found[ti] {
			anyFound = true
			continue
		}
		err := notFound(t, st.seen, scope, files)
		if t.Optional {
			optional = append(optional, err)
		} else {
			errs = append(errs, err)
		}
	}
	if len(optional) > 0 && !anyFound && len(errs) == 0 {
		errs = optional
	} else {
		for _, err := range optional {
			e.logf("warning: %v: left as is", err)
		}
	}
	return errors.Join(errs...)
}

// notFound says that t appears nowhere in scope, and what is nearest to it
// there.
func notFound(t Target, seen inventory, scope pathSet, files int) error {
	prefix := ""
	if t.Param != "" {
		prefix = t.Param + ": "
	}
	where := describeScope(scope)
	msg, kind, want := t.Repository+" appears nowhere in "+where, "repositories", t.Repository
	var names []string
	for _, r := range seen.repos {
		names = append(names, r)
	}
	if t.Repository == "" {
		msg, kind, want = "no value in "+where+" is marked with setter "+t.Setter, "setters", t.Setter
		names = names[:0]
		for s := range seen.setters {
			names = append(names, s)
		}
	}
	switch near := resource.Nearest(want, names, 3); {
	case files == 0:
		return fmt.Errorf("%s%s: no YAML file is there", prefix, msg)
	case len(near) == 0:
		return fmt.Errorf("%s%s: there are no %s there", prefix, msg, kind)
	default:
		return fmt.Errorf("%s%s: the %s there nearest to it are %s", prefix, msg, kind, strings.Join(near, ", "))
	}
}

// describeScope names the files an edit reads.
func describeScope(s pathSet) string {
	out := "the repository"
	if len(s.include) > 0 {
		out = "paths " + strings.Join(s.include, ", ")
	}
	if len(s.exclude) > 0 {
		out += " (but " + strings.Join(s.exclude, ", ") + ")"
	}
	return out
}

// setImage rewrites one reference, returning it as it reads after the
// splices. Parts a values file does not have (no digest key beside
// repository and tag) are left out, with a warning.
func (e *Editor) setImage(f *yamledit.File, img yamledit.Image, t Target) ([]yamledit.Splice, yamledit.Image, error) {
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
			return nil, img, nil
		}
	}
	sp, err := f.SetImage(img, tag, digest)
	after := img
	if tag != "" {
		after.Tag, after.Digest = tag, "" // a new tag alone drops the stale digest
	}
	if digest != "" {
		after.Digest = digest
	}
	return sp, after, err
}

// setMarked writes t's image into the values of img marked for setter
// t.Setter, and only those. A digest left beside a tag it sets, unmarked,
// is logged: it still pins the old image.
func (e *Editor) setMarked(f *yamledit.File, img yamledit.Image, t Target) ([]yamledit.Splice, yamledit.Image, error) {
	sp, after, err := f.SetMarked(img, t.Setter, yamledit.PolicyImage{Repository: t.Repository, Tag: t.Tag, Digest: t.Digest})
	if err != nil || len(sp) == 0 {
		return sp, after, err
	}
	if d := img.DigestScalar; d != nil && d.Value != "" && t.Digest == "" && after.Tag != img.Tag {
		if st := d.Setter(); st == nil || st.Policy != t.Setter {
			e.logf("warning: %s: %s is not marked for setter %s and still pins %s to its old image: mark it %s:digest or clear it",
				f.Name(), d.Path, t.Setter, fullRepository(img), t.Setter)
		}
	}
	return sp, after, nil
}

// addEntry returns the kustomization n (as edited so far) with an images
// entry for t added, when the resources it builds from outside scope use
// the image; nil when they do not.
func (e *Editor) addEntry(n string, t Target, scope pathSet, edited map[string][]byte) (*ImageChange, []byte, error) {
	used := e.reachable(path.Dir(n), map[string]bool{}, 0)
	var found *yamledit.Image
	for i, img := range used {
		if !scope.Match(img.File) && matches(img, Target{Repository: t.Repository}) {
			found = &used[i]
			break
		}
	}
	if found == nil {
		return nil, nil, nil
	}
	var f *yamledit.File
	var err error
	if data, ok := edited[n]; ok {
		f, err = yamledit.Parse(n, data)
	} else {
		f, err = e.parse(n)
	}
	if err != nil {
		return nil, nil, err
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
		return nil, nil, fmt.Errorf("%s: add an images entry for %s: %w", n, found.Repository, err)
	}
	data, err := f.Apply(sp)
	if err != nil {
		return nil, nil, err
	}
	return &ImageChange{Repository: found.Repository, Name: shortName(found.Repository), Old: describe(found.Tag, found.Digest),
		New: describe(t.Tag, t.Digest), File: n, Path: "images", Added: true, From: found.File}, data, nil
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
		t := Target{Repository: fd.Repository, Tag: fd.Tag, Digest: fd.Digest, Param: "params.promote", Optional: true}
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
