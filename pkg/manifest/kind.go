package manifest

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/gitops-resource/gitops-resource/pkg/gitrepo"
	"github.com/gitops-resource/gitops-resource/pkg/imageref"
	"github.com/gitops-resource/gitops-resource/pkg/registry"
	"github.com/gitops-resource/gitops-resource/pkg/resource"
)

// Kind is the manifest kind's verbs.
func Kind() resource.Kind { return resource.NewKind(Check, In, Out) }

// checkDepth is the history check fetches first; it fetches the whole
// branch when the answer lies further back (gitrepo.History).
const checkDepth = 100

func (s *Source) tracked() pathSet { return pathSet{include: s.Paths, exclude: s.IgnorePaths} }

// Check lists the commits on the branch's first-parent line that touch the
// tracked paths, oldest first, leaving out those skips names: with no
// version the latest one; with a version the requested one (while it is
// on the branch) and every later one. When the requested commit is not on
// the branch any more, it reports the latest.
func Check(ctx context.Context, in resource.Input) ([]Version, error) {
	req, err := parseCheckRequest(in)
	if err != nil {
		return nil, err
	}
	src, requested := req.Source, req.Ref
	client, ctx, done, err := src.Open(ctx, in.Log)
	if err != nil {
		return nil, err
	}
	defer done()
	hist, err := client.History(ctx, src.Branch, checkDepth)
	if err != nil {
		return nil, err
	}
	defer hist.Close()
	if hist.Tip().IsZero() {
		in.Logf("branch %s does not exist on %s yet: no versions", src.Branch, client.URL())
		return []Version{}, nil
	}
	scope := src.tracked()
	paths := scope.history()
	var matching []string // newest first
	found, skipped := false, 0
	err = hist.Walk(ctx, func(c *gitrepo.HistoryCommit) error {
		if requested != "" && c.Hash.String() == requested {
			found = true
			return gitrepo.ErrStop
		}
		if src.skips(c.Message) {
			skipped++
			return nil
		}
		if scope.Limited() {
			if ok, err := c.Changed(paths); err != nil || !ok {
				return err
			}
		}
		matching = append(matching, c.Hash.String())
		if requested == "" {
			return gitrepo.ErrStop
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the history of %s on %s: %w", src.Branch, client.URL(), err)
	}
	if skipped > 0 {
		in.Logf("left out %d commit(s) for [ci skip], [skip ci] or ignore_own_commits", skipped)
	}
	switch {
	case found:
		out := []Version{{requested}}
		for i := len(matching) - 1; i >= 0; i-- {
			out = append(out, Version{matching[i]})
		}
		in.Logf("%d new commit(s) on %s since %s", len(matching), src.Branch, requested[:12])
		return out, nil
	case requested != "":
		in.Logf("commit %s is not on %s any more: reporting the latest", requested[:12], src.Branch)
	}
	if len(matching) == 0 {
		in.Logf("no commit on %s touches the tracked paths", src.Branch)
		return []Version{}, nil
	}
	in.Logf("latest commit on %s touching the tracked paths: %s", src.Branch, matching[0][:12])
	return []Version{{matching[0]}}, nil
}

// ownFilesDir is where In writes its own files (images.json,
// manifests.tgz) in the get dir: in .git, where no file of the repository
// can be, git sees nothing, and put: cluster's path never reads.
const ownFilesDir = ".git/gitops"

// snapTree is a gitrepo.Snapshot as a Tree.
type snapTree struct{ *gitrepo.Snapshot }

func (s snapTree) Names() ([]string, error) {
	var names []string
	err := s.Files(func(name string, _ *object.File) error {
		names = append(names, name)
		return nil
	})
	return names, err
}

// In writes the tree at version.ref to the build dir as a shallow git
// checkout at that commit (.git from the fetch, with git-resource's files in
// it), plus, in .git/gitops/, images.json (every image reference in the
// tracked paths) and, with archive: true, manifests.tgz of the tracked
// paths.
func In(ctx context.Context, in resource.Input) (resource.Response, error) {
	req, err := parseInRequest(in)
	if err != nil {
		return resource.Response{}, err
	}
	src, params, ref := req.Source, req.Params, req.Ref
	client, ctx, done, err := src.Open(ctx, in.Log, gitrepo.ForCheckout())
	if err != nil {
		return resource.Response{}, err
	}
	defer done()
	snap, err := client.Snapshot(ctx, src.Branch, 1)
	if err != nil {
		return resource.Response{}, err
	}
	if snap.HeadHash().String() != ref {
		h, err := client.FetchCommit(ctx, snap, ref)
		if err != nil {
			return resource.Response{}, err
		}
		if err := snap.At(h); err != nil {
			return resource.Response{}, err
		}
	}
	tags, err := client.TagsAt(ctx, snap)
	if err != nil {
		return resource.Response{}, err
	}
	scope := src.tracked()
	// Finding the images (parsing YAML: CPU) runs beside writing the tree
	// (disk): both only read the snapshot.
	type finding struct {
		found []Found
		err   error
	}
	finds := make(chan finding, 1)
	go func() {
		ed := &Editor{Tree: snapTree{snap}, ValuePaths: src.valuePaths(), Log: in.Log}
		found, err := ed.Find(scope)
		finds <- finding{found, err}
	}()
	co := gitrepo.Checkout{URL: client.URL(), Tags: tags}
	err = snap.CheckoutRepository(in.Dir, co)
	f := <-finds
	if err != nil {
		return resource.Response{}, fmt.Errorf("write the tree of %s to %s: %w", ref[:12], in.Dir, err)
	}
	found := f.found
	if f.err != nil {
		in.Logf("warning: some files are left out of images.json: %v", f.err)
	}
	ours := filepath.Join(in.Dir, filepath.FromSlash(ownFilesDir))
	if err := os.MkdirAll(ours, 0o755); err != nil {
		return resource.Response{}, err
	}
	data, _ := json.MarshalIndent(found, "", "  ")
	if err := os.WriteFile(filepath.Join(ours, "images.json"), append(data, '\n'), 0o644); err != nil {
		return resource.Response{}, err
	}
	if params.Archive {
		if err := writeArchive(snap, scope, filepath.Join(ours, "manifests.tgz")); err != nil {
			return resource.Response{}, fmt.Errorf("write manifests.tgz: %w", err)
		}
	}
	in.Logf("fetched %s of %s: %d image reference(s) in the tracked paths", ref[:12], client.URL(), len(found))
	c := snap.Head
	meta := resource.Metadata{}
	meta.Add("commit", ref)
	meta.Add("author", c.Author.Name)
	meta.Add("date", c.Author.When.UTC().Format(time.RFC3339))
	subject, _, _ := strings.Cut(c.Message, "\n")
	meta.Add("message", subject)
	meta.Add("images", fmt.Sprint(len(found)))
	return resource.Response{Version: Version{ref}, Metadata: meta}, nil
}

// writeArchive writes a gzipped tar of the tracked files. (concourse/go-archive
// does not resolve from the module proxy here, so this is archive/tar.) In
// calls it after Checkout has refused any tree holding a path git refuses,
// so no entry plants a .git dir or leaves where the tar is unpacked.
func writeArchive(snap *gitrepo.Snapshot, scope pathSet, target string) error {
	out, err := os.Create(target)
	if err != nil {
		return err
	}
	defer out.Close()
	gz := gzip.NewWriter(out)
	tw := tar.NewWriter(gz)
	mtime := snap.Head.Committer.When
	err = snap.ReadFiles(scope.Match, func(name string, perm os.FileMode, size int64, content io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: int64(perm), Size: size, ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := io.Copy(tw, content)
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	return out.Close()
}

// Out sets the image references and pushes one commit (none when nothing
// changes), re-applying the edit on the new tip after a lost push race.
func Out(ctx context.Context, in resource.Input) (resource.Response, error) {
	req, err := parseOutRequest(in)
	if err != nil {
		return resource.Response{}, err
	}
	src, params := req.Source, req.Params
	targets, err := readTargets(in, params.Images)
	if err != nil {
		return resource.Response{}, err
	}
	for i := range targets {
		targets[i].Param = fmt.Sprintf("params.images[%d]", i)
	}
	msgTemplate := defaultMessage
	if params.CommitMessage != "" {
		msgTemplate = params.CommitMessage
	}
	author, _ := src.Author() // validated with the source
	stepCtx := ctx            // a wait for a pull request's merge has its own timeout
	client, ctx, done, err := src.Open(ctx, in.Log)
	if err != nil {
		return resource.Response{}, err
	}
	defer done()
	if params.ResolveDigest {
		for i := range targets {
			t := &targets[i]
			if t.Tag == "" || t.Digest != "" || t.Repository == "" {
				continue
			}
			d, err := registry.Resolve(ctx, t.Repository, t.Tag, append(src.registryOptions(), registry.WithLog(in.Log))...)
			var nf *registry.NotFoundError
			if errors.As(err, &nf) {
				return resource.Response{}, resource.ConfigErrorf("params.images[%d]: %v: nothing was written", i, err)
			}
			if registry.AccessDenied(err) {
				return resource.Response{}, fmt.Errorf("params.images[%d]: %w: check source.registry_username/registry_password or docker_config", i, err)
			}
			if err != nil {
				return resource.Response{}, fmt.Errorf("params.images[%d]: %w", i, err)
			}
			in.Logf("%s:%s is %s", t.Repository, t.Tag, d)
			t.Digest = d
		}
	}
	scope := pathSet{include: src.Paths, exclude: src.IgnorePaths}
	if len(params.Paths) > 0 {
		scope.include = params.Paths
	}
	if params.PullRequest != nil {
		return outPullRequest(stepCtx, ctx, in, req, client, targets, scope, msgTemplate, author)
	}
	branch := src.Branch
	if params.PushBranch != "" {
		branch = params.PushBranch
	}
	ciSkip := params.CISkip == nil || *params.CISkip
	var changes []ImageChange
	res, err := client.Update(ctx, branch, 1, func(snap *gitrepo.Snapshot) error {
		changes = nil
		if snap.Head == nil {
			if branch == src.Branch {
				return resource.ConfigErrorf("branch %s does not exist on %s: there is nothing to edit", branch, client.URL())
			}
			// push_branch is new: start it from the tip of source.branch.
			tip, err := client.Tip(ctx, src.Branch)
			if err != nil {
				return err
			}
			if tip.IsZero() {
				return resource.ConfigErrorf("branch %s does not exist on %s: there is nothing to edit", src.Branch, client.URL())
			}
			h, err := client.FetchCommit(ctx, snap, tip.String())
			if err != nil {
				return err
			}
			if err := snap.StartFrom(h); err != nil {
				return err
			}
			in.Logf("push_branch %s does not exist yet: starting it from %s at %s", branch, src.Branch, tip.String()[:12])
		}
		var err error
		changes, err = commitEdit(in, src, params, targets, scope, snap, msgTemplate, ciSkip, author)
		return err
	})
	if err != nil {
		return resource.Response{}, err
	}
	logChanges(in, changes)
	sha := res.Commit.String()
	if res.Pushed {
		in.Logf("pushed %s to %s on %s", sha[:12], branch, client.URL())
	} else {
		in.Logf("every reference is already as requested: nothing pushed, %s is the tip of %s", sha[:12], branch)
	}
	meta := resource.Metadata{}
	meta.Add("commit", sha)
	for _, c := range uniqueChanges(changes) {
		meta.Add("image", imageLine(c))
	}
	if res.SignedWith != "" {
		meta.Add("signing_key_fingerprint", res.SignedWith)
	}
	meta.AddBuild(in.Env)
	return resource.Response{Version: Version{sha}, Metadata: meta}, nil
}

// commitEdit applies the edit to snap (applyEdit) and commits it with the
// message of msgTemplate when it changes anything; it returns the changes,
// none when there is nothing to commit.
func commitEdit(in resource.Input, src *Source, params *OutParams, targets []Target, scope pathSet, snap *gitrepo.Snapshot, msgTemplate string, ciSkip bool, author gitrepo.Signature) ([]ImageChange, error) {
	changes, err := applyEdit(in, src, params, targets, scope, snap)
	if err != nil || len(changes) == 0 {
		return nil, err
	}
	msg, err := commitMessage(msgTemplate, changes, in.Env, ciSkip)
	if err != nil {
		return nil, err
	}
	if _, err := snap.Commit(msg, author); err != nil {
		return nil, err
	}
	return changes, nil
}

// applyEdit sets the targets in scope on snap, then promote's, and returns
// the changes (none: nothing to commit).
func applyEdit(in resource.Input, src *Source, params *OutParams, targets []Target, scope pathSet, snap *gitrepo.Snapshot) ([]ImageChange, error) {
	ed := &Editor{Tree: snapTree{snap}, ValuePaths: src.valuePaths(), Log: in.Log}
	changes, err := ed.Apply(targets, scope)
	if err != nil {
		return nil, err
	}
	if params.Promote != nil {
		pt, err := ed.PromoteTargets(params.Promote.From)
		if err != nil {
			return nil, err
		}
		for _, t := range pt {
			in.Logf("promote %s: %s", params.Promote.From, t)
		}
		ch, err := ed.Apply(pt, pathSet{include: []string{params.Promote.To}, exclude: src.IgnorePaths})
		if err != nil {
			return nil, err
		}
		changes = append(changes, ch...)
	}
	return changes, nil
}

// logChanges says what each change set, one line each.
func logChanges(in resource.Input, changes []ImageChange) {
	for _, c := range changes {
		verb := "set"
		if c.Added {
			verb = "added an images entry"
		}
		if len(c.Through) > 0 {
			aliases := "the alias on line"
			if len(c.Through) > 1 {
				aliases = "the aliases on lines"
			}
			verb += fmt.Sprintf(" once, at the anchor on line %d, for %s %s", c.Line, aliases, joinInts(c.Through))
		}
		in.Logf("%s: %s: %s %s → %s (%s)", c.File, c.Path, c.Repository, c.Old, c.New, verb)
	}
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}

// readTargets turns the images params into targets, reading tag_file,
// digest_file and from dirs, and reports every problem at once.
func readTargets(in resource.Input, images []ImageParam) ([]Target, error) {
	var out []Target
	var errs []error
	for i, ip := range images {
		field := fmt.Sprintf("params.images[%d]", i)
		t := Target{Repository: ip.Repository, Setter: ip.Setter, Tag: string(ip.Tag), Digest: ip.Digest}
		if ip.TagFile != "" {
			v, err := in.ReadParamFile(field+".tag_file", ip.TagFile)
			if err != nil {
				errs = append(errs, err)
			} else if err := imageref.ValidateTag(v); err != nil {
				errs = append(errs, resource.ConfigErrorf("%s.tag_file %s: %v", field, ip.TagFile, err))
			}
			t.Tag = v
		}
		if ip.DigestFile != "" {
			v, err := in.ReadParamFile(field+".digest_file", ip.DigestFile)
			if err != nil {
				errs = append(errs, err)
			} else if err := imageref.ValidateDigest(v); err != nil {
				errs = append(errs, resource.ConfigErrorf("%s.digest_file %s: %v", field, ip.DigestFile, err))
			}
			t.Digest = v
		}
		if ip.From != "" {
			if err := readFrom(in, field+".from", ip.From, &t); err != nil {
				errs = append(errs, err)
			}
		}
		out = append(out, t)
	}
	return out, errors.Join(errs...)
}

// readFrom reads a registry-image get dir: repository (unless the param
// names it), tag and digest, each optional but not both tag and digest.
// They are read through the build dir's root: a file that is a symlink out
// of the build dir fails the put.
func readFrom(in resource.Input, field, dir string, t *Target) error {
	name, err := resource.ParamPath(field, dir)
	if err != nil {
		return err
	}
	root, err := in.OpenBuildDir()
	if err != nil {
		return err
	}
	defer root.Close()
	switch st, err := root.Stat(name); {
	case err == nil && !st.IsDir(), errors.Is(err, fs.ErrNotExist):
		return resource.ConfigErrorf("%s: %s is not a dir in the build dir (is the registry-image get mapped into this step?)", field, dir)
	case err != nil:
		return resource.ParamError(field, dir, err)
	}
	var errs []error
	read := func(file string) string {
		data, err := root.ReadFile(filepath.Join(name, file))
		if errors.Is(err, fs.ErrNotExist) {
			return ""
		}
		if err != nil {
			errs = append(errs, resource.ParamError(field, dir, err))
			return ""
		}
		return strings.TrimSpace(string(data))
	}
	var repository string
	if t.Repository == "" {
		repository = read("repository")
	}
	tag, digest := read("tag"), read("digest")
	if len(errs) > 0 {
		return errors.Join(errs...) // files there but not readable: nothing more to say
	}
	if t.Repository == "" {
		t.Repository = repository
		if t.Repository == "" {
			errs = append(errs, resource.ConfigErrorf("%s: %s/repository is missing: set params.images[].repository", field, dir))
		} else if r, err := imageref.Parse(t.Repository); err != nil {
			errs = append(errs, resource.ConfigErrorf("%s: %s/repository: %v", field, dir, err))
		} else {
			t.Repository = r.Name
		}
	}
	t.Tag, t.Digest = tag, digest
	if t.Tag == "" && t.Digest == "" {
		errs = append(errs, resource.ConfigErrorf("%s: %s has neither a tag nor a digest file", field, dir))
	}
	if t.Tag != "" {
		if err := imageref.ValidateTag(t.Tag); err != nil {
			errs = append(errs, resource.ConfigErrorf("%s: %s/tag: %v", field, dir, err))
		}
	}
	if t.Digest != "" {
		if err := imageref.ValidateDigest(t.Digest); err != nil {
			errs = append(errs, resource.ConfigErrorf("%s: %s/digest: %v", field, dir, err))
		}
	}
	return errors.Join(errs...)
}

// defaultMessage is "web: 1.0.0 → 1.1.0, api: 2.0 → 2.1".
const defaultMessage = "%changes%"

// messageValues are the commit_message placeholders: %changes% ("web: 1.0.0
// → 1.1.0, api: 2.0 → 2.1"), %images% ("web=1.1.0 api=2.1"), %build%
// ("pipeline/job #12") and %build_url%. Digests are shortened to 12 hex.
func messageValues(changes []ImageChange, env resource.Env) map[string]string {
	var all, images []string
	for _, c := range uniqueChanges(changes) {
		old, new := shortDigests(c.Old), shortDigests(c.New)
		all = append(all, c.Name+": "+old+" → "+new)
		images = append(images, c.Name+"="+new)
	}
	return map[string]string{"changes": strings.Join(all, ", "), "images": strings.Join(images, " "),
		"build": env.Build(), "build_url": env.BuildURL()}
}

// commitMessage expands the message's placeholders, appends [ci skip] to
// the subject and adds the trailers: Gitops-Resource, one Image line per
// change, the build.
func commitMessage(text string, changes []ImageChange, env resource.Env, ciSkip bool) (string, error) {
	expanded, err := resource.Expand(text, messageValues(changes, env))
	if err != nil {
		return "", resource.ConfigErrorf("params.commit_message: %v", err)
	}
	msg := strings.TrimSpace(expanded)
	if msg == "" {
		msg = "update images"
	}
	subject, body, hasBody := strings.Cut(msg, "\n")
	if ciSkip && !strings.Contains(msg, "[ci skip]") && !strings.Contains(msg, "[skip ci]") {
		subject += " [ci skip]"
	}
	if hasBody {
		subject += "\n" + body
	}
	trailers := []resource.Trailer{{Key: resource.TrailerKey, Value: KindName}}
	for _, c := range uniqueChanges(changes) {
		trailers = append(trailers, resource.Trailer{Key: "Image", Value: imageLine(c)})
	}
	trailers = append(trailers, env.Trailers()...)
	return gitrepo.CommitMessage(subject, trailers), nil
}

// uniqueChanges keeps one change per repository, old and new value.
func uniqueChanges(changes []ImageChange) []ImageChange {
	seen := map[string]bool{}
	var out []ImageChange
	for _, c := range changes {
		key := imageref.Canonical(c.Repository) + " " + c.Old + " " + c.New
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, c)
	}
	return out
}

func imageLine(c ImageChange) string {
	sep := ":"
	if strings.Contains(c.Old, ":") && !strings.Contains(c.Old, "@") {
		sep = "@" // a digest alone
	}
	if c.Old == "" {
		return c.Repository + " -> " + c.New
	}
	return c.Repository + sep + c.Old + " -> " + c.New
}

// shortDigests shortens sha256:<64 hex> to 12 hex digits for the subject.
func shortDigests(v string) string {
	tag, digest, ok := strings.Cut(v, "sha256:")
	if !ok || len(digest) < 12 {
		return v
	}
	return tag + "sha256:" + digest[:12]
}
