package manifest

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitops-resource/gitops-resource/pkg/gitrepo"
	"github.com/gitops-resource/gitops-resource/pkg/imageref"
	"github.com/gitops-resource/gitops-resource/pkg/registry"
	"github.com/gitops-resource/gitops-resource/pkg/resource"
	"github.com/gitops-resource/gitops-resource/pkg/yamledit"
)

// KindName is source.kind, and the value of the commit trailer
// Gitops-Resource on commits this kind makes.
const KindName = "manifest"

// Source configures the kind.
type Source struct {
	Kind string `json:"kind"`
	gitrepo.Source
	// Paths are the files the resource tracks: git pathspecs, as
	// git-resource reads them (see pathSet). Empty means the whole repository.
	Paths []string `json:"paths"`
	// IgnorePaths are taken out of Paths, written the same way.
	IgnorePaths []string `json:"ignore_paths"`
	// IgnoreOwnCommits makes check skip the commits out made.
	IgnoreOwnCommits bool `json:"ignore_own_commits"`
	// DisableCISkip makes check report commits whose message holds
	// [ci skip] or [skip ci], which it skips otherwise (git-resource's
	// disable_ci_skip).
	DisableCISkip bool `json:"disable_ci_skip"`
	// ValuePaths name where Helm values files keep images, beside the
	// repository+tag pairs found on their own.
	ValuePaths []ValuePath `json:"value_paths"`
	// RegistryUsername and RegistryPassword authenticate resolve_digest.
	RegistryUsername string `json:"registry_username"`
	RegistryPassword string `json:"registry_password"`
	// DockerConfig is a Docker config.json (its content) for resolve_digest.
	DockerConfig string `json:"docker_config"`
	// RegistryInsecure makes resolve_digest speak plain HTTP to registries
	// that are not on loopback (those always are), as registry-image's
	// insecure does.
	RegistryInsecure bool `json:"registry_insecure"`
	// Forge is the forge holding the repository, for put's pull_request
	// (pullrequest.go).
	Forge *ForgeSource `json:"forge"`
}

// ValuePath is one explicit Helm value path: repository alone holds a whole
// reference; with tag (and digest) the three hold the parts.
type ValuePath struct {
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
	Digest     string `json:"digest"`
}

// Version is a commit on the branch.
type Version struct {
	Ref string `json:"ref"`
}

// InParams are the params of get.
type InParams struct {
	// Archive also writes manifests.tgz of the tracked paths.
	Archive bool `json:"archive"`
}

// OutParams are the params of put.
type OutParams struct {
	Images []ImageParam `json:"images"`
	// Paths limit the edit (same syntax as source.paths); default source.paths.
	Paths []string `json:"paths"`
	// CommitMessage is the commit subject (and body), with the
	// placeholders of messageValues; default "%changes%".
	CommitMessage string `json:"commit_message"`
	// PushBranch is the branch to commit to; default source.branch.
	PushBranch string `json:"push_branch"`
	// CISkip appends [ci skip] to the subject; default true.
	CISkip *bool `json:"ci_skip"`
	// ResolveDigest looks each tag up in the registry and writes tag@digest.
	ResolveDigest bool     `json:"resolve_digest"`
	Promote       *Promote `json:"promote"`
	// PullRequest delivers the change as a pull request into a base
	// branch instead of a push to it (pullrequest.go).
	PullRequest *PullRequestParams `json:"pull_request"`
}

// ImageParam is one image to set.
type ImageParam struct {
	Repository string          `json:"repository"`
	Tag        resource.String `json:"tag"`
	TagFile    string          `json:"tag_file"`
	Digest     string          `json:"digest"`
	DigestFile string          `json:"digest_file"`
	// From is the dir of a registry-image get: files repository, tag, digest.
	From string `json:"from"`
	// Setter selects Flux setter markers by ImagePolicy, "namespace:name".
	Setter string `json:"setter"`
}

// Promote copies the image references found under From to To.
type Promote struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// parseSource decodes and validates the source and registers its secrets.
func parseSource(in resource.Input) (*Source, error) {
	var s Source
	if err := resource.DecodeStrict(in.Request.Source, &s, "source"); err != nil {
		return nil, err
	}
	if s.Forge != nil {
		in.Secrets.Add(s.Forge.Token)
	}
	s.forgeTokenAsPassword()
	s.Secrets(in.Secrets)
	in.Secrets.Add(s.RegistryPassword, s.DockerConfig)
	in.Secrets.AddBasicAuth(s.RegistryUsername, s.RegistryPassword)
	return &s, s.validate()
}

func (s *Source) validate() error {
	errs := []error{s.Source.Validate(KindName)}
	errs = append(errs, validatePatterns("source.paths", s.Paths), validatePatterns("source.ignore_paths", s.IgnorePaths))
	for i, vp := range s.ValuePaths {
		field := fmt.Sprintf("source.value_paths[%d]", i)
		if vp.Repository == "" {
			errs = append(errs, resource.ConfigErrorf("%s.repository is required: the value path of the repository (or whole reference), e.g. image.repository", field))
		}
		for k, v := range map[string]string{"repository": vp.Repository, "tag": vp.Tag, "digest": vp.Digest} {
			if v == "" {
				continue
			}
			if _, err := yamledit.ParsePath(v); err != nil {
				errs = append(errs, resource.ConfigErrorf("%s.%s: %v", field, k, err))
			}
		}
		if vp.Digest != "" && vp.Tag == "" {
			errs = append(errs, resource.ConfigErrorf("%s.digest needs %s.tag", field, field))
		}
	}
	if s.DockerConfig != "" {
		if s.RegistryUsername != "" || s.RegistryPassword != "" {
			errs = append(errs, resource.ConfigErrorf("source.docker_config and source.registry_username/registry_password cannot both be set"))
		}
		if err := registry.ValidateDockerConfig(s.DockerConfig); err != nil {
			errs = append(errs, resource.ConfigErrorf("source.%v", err))
		}
	}
	if (s.RegistryUsername == "") != (s.RegistryPassword == "") {
		errs = append(errs, resource.ConfigErrorf("source.registry_username and source.registry_password go together"))
	}
	return errors.Join(errs...)
}

func (s *Source) valuePaths() []yamledit.ValuePath {
	out := make([]yamledit.ValuePath, len(s.ValuePaths))
	for i, v := range s.ValuePaths {
		out[i] = yamledit.ValuePath{Repository: v.Repository, Tag: v.Tag, Digest: v.Digest}
	}
	return out
}

func (s *Source) registryOptions() []registry.Option {
	return []registry.Option{registry.WithBasicAuth(s.RegistryUsername, s.RegistryPassword), registry.WithDockerConfig(s.DockerConfig), registry.WithInsecure(s.RegistryInsecure)}
}

// validatePatterns checks paths: relative, inside the repository, pathspecs git accepts.
func validatePatterns(field string, patterns []string) error {
	var errs []error
	for i, p := range patterns {
		name := fmt.Sprintf("%s[%d]", field, i)
		if err := validatePathspec(name, p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// validateRepoPath checks a path inside the repository.
func validateRepoPath(field, p string) error {
	switch {
	case strings.TrimSpace(p) == "":
		return resource.ConfigErrorf("%s is empty", field)
	case strings.HasPrefix(p, "/"):
		return resource.ConfigErrorf("%s: %q must be relative to the repository root", field, p)
	case path.Clean(p) == ".." || strings.HasPrefix(path.Clean(p), "../"):
		return resource.ConfigErrorf("%s: %q leaves the repository", field, p)
	}
	return nil
}

// The request of each verb, decoded and validated once (parseCheckRequest,
// parseInRequest, parseOutRequest) with every config problem reported at
// once before any network I/O, then passed down as it is.
type (
	checkRequest struct {
		Source *Source
		// Ref is the commit check reports from; "" on the first check.
		Ref string
	}
	inRequest struct {
		Source *Source
		Params InParams
		Ref    string
	}
	outRequest struct {
		Source *Source
		Params *OutParams
	}
)

func parseCheckRequest(in resource.Input) (checkRequest, error) {
	src, err := parseSource(in)
	ref, rerr := parseRef(in, false)
	return checkRequest{Source: src, Ref: ref}, errors.Join(err, rerr)
}

func parseInRequest(in resource.Input) (inRequest, error) {
	req := inRequest{}
	var serr, rerr error
	req.Source, serr = parseSource(in)
	perr := resource.DecodeStrict(in.Request.Params, &req.Params, "params")
	req.Ref, rerr = parseRef(in, true)
	return req, errors.Join(serr, perr, rerr)
}

func parseOutRequest(in resource.Input) (outRequest, error) {
	src, err := parseSource(in)
	params, perr := resource.DecodeParams[OutParams](in)
	var kerr, prerr error
	if src != nil {
		kerr = src.LoadSigner()
		if params != nil && params.PullRequest != nil {
			prerr = validatePullRequest(src, params.PullRequest)
		}
	}
	return outRequest{Source: src, Params: params}, errors.Join(err, perr, kerr, prerr)
}

// parseRef decodes the requested commit, lowercase: "" when there is none
// (the first check); in needs one.
func parseRef(in resource.Input, required bool) (string, error) {
	var v Version
	if err := resource.DecodeStrict(in.Request.Version, &v, "version"); err != nil {
		return "", err
	}
	if v.Ref == "" {
		if required {
			return "", resource.ConfigErrorf("version.ref is required: in runs on a version that check emitted")
		}
		return "", nil
	}
	if !plumbing.IsHash(v.Ref) {
		return "", resource.ConfigErrorf("version.ref must be a full 40-digit commit SHA")
	}
	return strings.ToLower(v.Ref), nil
}

// Validate reports every problem with the params at once.
func (p *OutParams) Validate() error {
	var errs []error
	if len(p.Images) == 0 && p.Promote == nil {
		errs = append(errs, resource.ConfigErrorf("params: nothing to do: set images (what to set) or promote (from one path to another)"))
	}
	for i, img := range p.Images {
		errs = append(errs, img.validate(fmt.Sprintf("params.images[%d]", i)))
	}
	errs = append(errs, validatePatterns("params.paths", p.Paths))
	if p.CommitMessage != "" {
		if _, err := resource.Expand(p.CommitMessage, messageValues(nil, resource.Env{})); err != nil {
			errs = append(errs, resource.ConfigErrorf("params.commit_message: %v", err))
		}
	}
	if p.Promote != nil {
		if p.Promote.From == "" || p.Promote.To == "" {
			errs = append(errs, resource.ConfigErrorf("params.promote needs from and to: the paths to copy image references from and to"))
		} else {
			errs = append(errs, validateRepoPath("params.promote.from", p.Promote.From), validateRepoPath("params.promote.to", p.Promote.To))
			if path.Clean(p.Promote.From) == path.Clean(p.Promote.To) {
				errs = append(errs, resource.ConfigErrorf("params.promote.from and params.promote.to are the same path"))
			}
		}
	}
	if p.PushBranch != "" {
		if err := gitrepo.ValidBranch(p.PushBranch); err != nil {
			errs = append(errs, resource.ConfigErrorf("params.push_branch %v", err))
		}
	}
	if p.PullRequest != nil {
		errs = append(errs, p.PullRequest.validate(p.PushBranch))
	}
	return errors.Join(errs...)
}

func (img ImageParam) validate(field string) error {
	var errs []error
	if img.Repository == "" && img.From == "" && img.Setter == "" {
		errs = append(errs, resource.ConfigErrorf("%s.repository is required (or from, or setter)", field))
	}
	if img.Repository != "" {
		if r, err := imageref.Parse(img.Repository); err == nil && (r.Tag != "" || r.Digest != "") {
			errs = append(errs, resource.ConfigErrorf("%s.repository must not carry a tag or digest: use tag or digest", field))
		} else if err := imageref.ValidateName(img.Repository); err != nil {
			errs = append(errs, resource.ConfigErrorf("%s.repository: %v", field, err))
		}
	}
	if img.Setter != "" && strings.Count(img.Setter, ":") != 1 {
		errs = append(errs, resource.ConfigErrorf("%s.setter %q must be an ImagePolicy as \"namespace:name\"", field, img.Setter))
	}
	if img.Tag == "" && img.TagFile == "" && img.Digest == "" && img.DigestFile == "" && img.From == "" {
		errs = append(errs, resource.ConfigErrorf("%s needs tag, tag_file, digest, digest_file or from", field))
	}
	if img.Tag != "" && img.TagFile != "" {
		errs = append(errs, resource.ConfigErrorf("%s: tag and tag_file cannot both be set", field))
	}
	if img.Digest != "" && img.DigestFile != "" {
		errs = append(errs, resource.ConfigErrorf("%s: digest and digest_file cannot both be set", field))
	}
	if img.From != "" && (img.Tag != "" || img.TagFile != "" || img.Digest != "" || img.DigestFile != "") {
		errs = append(errs, resource.ConfigErrorf("%s.from reads the tag and digest from a registry-image get: it cannot be combined with tag, tag_file, digest or digest_file", field))
	}
	if img.Tag != "" {
		if err := imageref.ValidateTag(string(img.Tag)); err != nil {
			errs = append(errs, resource.ConfigErrorf("%s.tag: %v", field, err))
		}
	}
	if img.Digest != "" {
		if err := imageref.ValidateDigest(img.Digest); err != nil {
			errs = append(errs, resource.ConfigErrorf("%s.digest: %v", field, err))
		}
	}
	return errors.Join(errs...)
}
