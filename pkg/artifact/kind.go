package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/gitops-resource/gitops-resource/pkg/imageref"
	"github.com/gitops-resource/gitops-resource/pkg/kustomize"
	"github.com/gitops-resource/gitops-resource/pkg/registry"
	"github.com/gitops-resource/gitops-resource/pkg/resource"
)

// Kind is the kind artifact's three verbs.
func Kind() resource.Kind { return resource.NewKind(Check, In, Out) }

// epoch is .created when nothing better is known: a fixed time, so the
// same files give the same digest.
var epoch = time.Unix(0, 0).UTC()

// Check reports the artifact at source.tag, or the newest tag in
// source.semver's range, as one version; none when there is no such tag.
func Check(ctx context.Context, in resource.Input) ([]Version, error) {
	req, err := parseCheckRequest(in)
	if err != nil {
		return nil, err
	}
	src := req.Source
	ctx, cancel := context.WithTimeout(ctx, src.timeout())
	defer cancel()
	repo, err := src.open(ctx, in)
	if err != nil {
		return nil, err
	}
	tag := string(src.Tag)
	if src.constraint != nil {
		tags, err := repo.Tags()
		if err != nil {
			return nil, src.explain(err)
		}
		if tag = newest(tags, src.constraint); tag == "" {
			in.Logf("no tag of %s is in the range %s (of %d tags)", repo.Name(), src.Semver, len(tags))
			return nil, nil
		}
	}
	digest, err := repo.Resolve(tag)
	var nf *registry.NotFoundError
	if errors.As(err, &nf) {
		in.Logf("%s:%s does not exist yet", repo.Name(), tag)
		return nil, nil
	}
	if err != nil {
		return nil, src.explain(err)
	}
	in.Logf("%s:%s is %s", repo.Name(), tag, digest)
	return []Version{{Tag: tag, Digest: digest}}, nil
}

// newest is the tag of the highest version in the range; tags that are not
// versions are ignored, as Flux's OCIRepository ignores them. Of two tags of
// one version (1.0.0, v1.0.0) the one sorting last wins.
func newest(tags []string, c *semver.Constraints) string {
	var best *semver.Version
	var bestTag string
	for _, t := range tags {
		v, err := semver.NewVersion(t)
		if err != nil || !c.Check(v) {
			continue
		}
		if best == nil || v.GreaterThan(best) || (v.Equal(best) && t > bestTag) {
			best, bestTag = v, t
		}
	}
	return bestTag
}

// In pulls the version's artifact by digest and extracts its content into
// <dir>/content, beside the files tag, digest, revision and url.
func In(ctx context.Context, in resource.Input) (resource.Response, error) {
	req, err := parseInRequest(in)
	if err != nil {
		return resource.Response{}, err
	}
	src, v := req.Source, req.Version
	ctx, cancel := context.WithTimeout(ctx, src.timeout())
	defer cancel()
	repo, err := src.open(ctx, in)
	if err != nil {
		return resource.Response{}, err
	}
	img, err := repo.Image(v.Digest)
	if err != nil {
		return resource.Response{}, src.explain(err)
	}
	manifest, err := img.Manifest()
	if err != nil {
		return resource.Response{}, src.explain(fmt.Errorf("read the manifest of %s@%s: %w", repo.Name(), v.Digest, err))
	}
	meta := Metadata{Source: manifest.Annotations[SourceAnnotation], Revision: manifest.Annotations[RevisionAnnotation], Created: manifest.Annotations[CreatedAnnotation]}
	files := map[string]string{"tag": v.Tag, "digest": v.Digest, "revision": meta.Revision, "url": url(repo.Name(), v)}
	for _, name := range []string{"tag", "digest", "revision", "url"} {
		if err := os.WriteFile(filepath.Join(in.Dir, name), []byte(files[name]+"\n"), 0o644); err != nil {
			return resource.Response{}, fmt.Errorf("write %s: %w", name, err)
		}
	}
	if req.Params.SkipDownload {
		in.Logf("skip_download: wrote tag, digest, revision and url of %s", url(repo.Name(), v))
	} else {
		n, size, err := pull(img, manifest, filepath.Join(in.Dir, "content"))
		if err != nil {
			return resource.Response{}, fmt.Errorf("pull %s: %w", url(repo.Name(), v), src.explain(err))
		}
		in.Logf("pulled %s: %d files into content/ (%s compressed)", url(repo.Name(), v), n, humanBytes(size))
	}
	return resource.Response{Version: v, Metadata: metadata(meta, url(repo.Name(), v))}, nil
}

// contentTypes are the layer media types in reads: Flux's, and the plain
// gzip tar layers older `flux push artifact` wrote.
var contentTypes = map[types.MediaType]bool{ContentMediaType: true, types.OCILayer: true, types.DockerLayer: true}

// pull extracts the artifact's content layer: the first layer of Flux's
// media type, else the first layer, as Flux's OCIRepository picks it.
func pull(img v1.Image, manifest *v1.Manifest, dir string) (int, int64, error) {
	if len(manifest.Layers) == 0 {
		return 0, 0, &ExtractError{Reason: "is missing: the manifest has no layer"}
	}
	desc := manifest.Layers[0]
	for _, l := range manifest.Layers {
		if l.MediaType == ContentMediaType {
			desc = l
			break
		}
	}
	if !contentTypes[desc.MediaType] {
		return 0, 0, &ExtractError{Reason: fmt.Sprintf("layer is of media type %s, not %s: is it a Flux artifact?", desc.MediaType, ContentMediaType)}
	}
	if desc.Size > MaxSize {
		return 0, 0, &ExtractError{Reason: fmt.Sprintf("layer is %s, more than the %d MiB an artifact may hold", humanBytes(desc.Size), MaxSize>>20)}
	}
	layer, err := img.LayerByDigest(desc.Digest)
	if err != nil {
		return 0, 0, err
	}
	rc, err := layer.Compressed()
	if err != nil {
		return 0, 0, err
	}
	defer rc.Close()
	// The registry may send more than the manifest says: no more is read.
	n, err := extract(io.LimitReader(rc, desc.Size+1), dir)
	return n, desc.Size, err
}

// Out packs params.path (or its kustomize build) as an artifact, pushes it
// under the tag, points the additional tags at it, and reports {tag, digest}.
func Out(ctx context.Context, in resource.Input) (resource.Response, error) {
	req, err := parseOutRequest(in)
	if err != nil {
		return resource.Response{}, err
	}
	src, p := req.Source, req.Params
	root, err := in.OpenBuildDir()
	if err != nil {
		return resource.Response{}, err
	}
	defer root.Close()
	dir, _ := resource.ParamPath("params.path", p.Path)
	tags, terr := outTags(in, src, p)
	meta, merr := outMetadata(in, root, dir, p)
	if err := errors.Join(terr, merr); err != nil {
		return resource.Response{}, err
	}
	layer, err := pack(in, root, dir, p)
	if err != nil {
		return resource.Response{}, err
	}
	img, err := image(layer, meta)
	if err != nil {
		return resource.Response{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		return resource.Response{}, fmt.Errorf("digest the artifact: %w", err)
	}

	ctx, cancel := context.WithTimeout(ctx, src.timeout())
	defer cancel()
	repo, err := src.open(ctx, in)
	if err != nil {
		return resource.Response{}, err
	}
	if err := repo.Write(tags[0], img); err != nil {
		return resource.Response{}, src.explain(err)
	}
	v := Version{Tag: tags[0], Digest: digest.String()}
	in.Logf("pushed %s (revision %s)", url(repo.Name(), v), meta.Revision)
	for _, t := range tags[1:] {
		if err := repo.Tag(t, img); err != nil {
			return resource.Response{}, src.explain(err)
		}
		in.Logf("tagged %s:%s", repo.Name(), t)
	}
	md := metadata(meta, url(repo.Name(), v))
	md.Add("tags", strings.Join(tags, " "))
	md.AddBuild(in.Env)
	return resource.Response{Version: v, Metadata: md}, nil
}

// outTags are the tag to push (params.tag, the content of params.tag_file,
// or source.tag) then the additional tags, without repeats.
func outTags(in resource.Input, src *Source, p *OutParams) ([]string, error) {
	tag := string(p.Tag)
	if p.TagFile != "" {
		t, err := in.ReadParamFile("params.tag_file", p.TagFile)
		if err != nil {
			return nil, err
		}
		if err := imageref.ValidateTag(t); err != nil {
			return nil, resource.ConfigErrorf("params.tag_file %s holds %q, which is not a tag: %v", p.TagFile, t, err)
		}
		tag = t
	}
	if tag == "" {
		tag = string(src.Tag)
	}
	tags := []string{tag}
	if p.AdditionalTags != "" {
		content, err := in.ReadParamFile("params.additional_tags", p.AdditionalTags)
		if err != nil {
			return nil, err
		}
		var errs []error
		for _, t := range strings.Fields(content) {
			if err := imageref.ValidateTag(t); err != nil {
				errs = append(errs, resource.ConfigErrorf("params.additional_tags %s holds %q, which is not a tag: %v", p.AdditionalTags, t, err))
				continue
			}
			if !contains(tags, t) {
				tags = append(tags, t)
			}
		}
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
	}
	return tags, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// outMetadata settles the annotations: the params, else what the git get
// dir at or above the path says; source and revision are required when
// there is none. .created is params.created, else the commit's time, else
// the Unix epoch: never the wall clock, so a pack is reproducible.
func outMetadata(in resource.Input, root *os.Root, dir string, p *OutParams) (Metadata, error) {
	if _, err := root.Stat(dir); err != nil {
		return Metadata{}, resource.ParamError("params.path", p.Path, err)
	}
	meta := Metadata{Source: p.Source, Revision: p.Revision, Created: p.Created}
	origin, err := findGit(root, in.Dir, dir)
	if err != nil {
		return Metadata{}, err
	}
	if origin != nil {
		in.Logf("annotations from the git dir %s: %s at %s", origin.Dir, origin.Source, origin.Revision)
		if meta.Source == "" {
			meta.Source = origin.Source
		}
		if meta.Revision == "" {
			meta.Revision = origin.Revision
		}
		if meta.Created == "" {
			meta.Created = origin.Created.Format(time.RFC3339)
		}
	}
	var errs []error
	if meta.Source == "" {
		errs = append(errs, resource.ConfigErrorf("params.source is required: %s is not in a git get dir (with an origin remote) to take it from; give the URL the manifests come from", p.Path))
	}
	if meta.Revision == "" {
		errs = append(errs, resource.ConfigErrorf("params.revision is required: %s is not in a git get dir to take it from; give it as Flux writes it, <branch>@sha1:<commit>", p.Path))
	}
	if meta.Created == "" {
		meta.Created = epoch.Format(time.RFC3339)
	}
	return meta, errors.Join(errs...)
}

// builtName is the one file a kustomize build is packed as.
const builtName = "manifests.yaml"

// pack makes the content layer: the files under dir, or its kustomize
// build as one file, as a reproducible gzip tar.
func pack(in resource.Input, root *os.Root, dir string, p *OutParams) ([]byte, error) {
	build := p.Kustomize == KustomizeTrue || (p.Kustomize == KustomizeAuto && kustomize.Is(root, dir))
	var entries []entry
	info, err := root.Stat(dir)
	if err != nil {
		return nil, resource.ParamError("params.path", p.Path, err)
	}
	switch {
	case !info.IsDir():
		// One file, as flux push artifact packs a file path.
		if info.Size() > MaxSize {
			return nil, resource.ConfigErrorf("params.path %s is more than the %d MiB an artifact may hold", p.Path, MaxSize>>20)
		}
		data, err := root.ReadFile(dir)
		if err != nil {
			return nil, resource.ParamError("params.path", p.Path, err)
		}
		in.Logf("packing the file %s, %s", p.Path, humanBytes(int64(len(data))))
		entries = singleFile(filepath.Base(dir), data)
	case build:
		data, err := kustomize.Build(root, dir)
		if err != nil {
			return nil, fmt.Errorf("params.path %s: %w", p.Path, err)
		}
		in.Logf("kustomize build %s: %s as %s", p.Path, humanBytes(int64(len(data))), builtName)
		entries = singleFile(builtName, data)
	default:
		var st packStats
		var err error
		entries, st, err = packDir(root, dir)
		if err != nil {
			return nil, resource.ParamError("params.path", p.Path, err)
		}
		in.Logf("packing %s: %d files in %d dirs, %s", p.Path, st.Files, st.Dirs, humanBytes(st.Bytes))
		if len(st.Skipped) > 0 {
			sort.Strings(st.Skipped)
			in.Logf("left out (not a file or dir, as flux push artifact leaves them out): %s", strings.Join(st.Skipped, ", "))
		}
	}
	return tarGzip(entries)
}

// open connects to the source's repository (no request yet).
func (s *Source) open(ctx context.Context, in resource.Input) (*registry.Repository, error) {
	repo, err := registry.NewRepository(ctx, s.Repository, s.registryOptions(in)...)
	if err != nil {
		return nil, resource.ConfigErrorf("source.repository: %v", err)
	}
	return repo, nil
}

// explain adds what to check to a refusal by the registry.
func (s *Source) explain(err error) error {
	if registry.AccessDenied(err) {
		return fmt.Errorf("%w: %s", err, s.credentialsHint())
	}
	return err
}

func metadata(m Metadata, u string) resource.Metadata {
	var md resource.Metadata
	md.Add("url", u)
	md.Add("source", m.Source)
	md.Add("revision", m.Revision)
	md.Add("created", m.Created)
	return md
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
