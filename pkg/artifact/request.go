package artifact

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/gitops-resource/gitops-resource/pkg/imageref"
	"github.com/gitops-resource/gitops-resource/pkg/registry"
	"github.com/gitops-resource/gitops-resource/pkg/resource"
)

// KindName is source.kind.
const KindName = "artifact"

// defaultTimeout bounds the network work of one verb.
const defaultTimeout = 5 * time.Minute

// Source configures the kind.
type Source struct {
	Kind string `json:"kind"`
	// Repository is the OCI repository, without oci://, tag or digest:
	// ghcr.io/acme/web-manifests.
	Repository string `json:"repository"`
	// Insecure speaks plain HTTP to the registry (loopback always is).
	Insecure bool `json:"insecure"`
	// Username and Password, or DockerConfig (a config.json's content),
	// authenticate every request, as the manifest kind's resolve_digest
	// credentials do.
	Username     string `json:"username"`
	Password     string `json:"password"`
	DockerConfig string `json:"docker_config"`
	// Tag is the tag check follows; default "latest" unless Semver is set.
	Tag resource.String `json:"tag"`
	// Semver makes check report the newest tag in this range (">=1.0.0 <2.0.0").
	Semver string `json:"semver"`
	// Timeout bounds the network work of each verb; default 5m.
	Timeout resource.Duration `json:"timeout"`

	constraint *semver.Constraints
}

// Version is one artifact: the tag it was found at and its manifest digest.
type Version struct {
	Tag    string `json:"tag"`
	Digest string `json:"digest"`
}

// InParams are the params of get.
type InParams struct {
	// SkipDownload writes the tag, digest, revision and url files only.
	SkipDownload bool `json:"skip_download"`
}

// OutParams are the params of put.
type OutParams struct {
	// Path is the dir of the build dir to pack (required).
	Path string `json:"path"`
	// Tag, or TagFile (a file whose content is the tag), names the tag to
	// push; default source.tag.
	Tag     resource.String `json:"tag"`
	TagFile string          `json:"tag_file"`
	// AdditionalTags is a file of whitespace-separated tags also pointed at
	// the artifact.
	AdditionalTags string `json:"additional_tags"`
	// Source and Revision are the annotations org.opencontainers.image.source
	// and .revision; default from a git get dir at or above Path.
	Source   string `json:"source"`
	Revision string `json:"revision"`
	// Created is the annotation org.opencontainers.image.created (RFC 3339);
	// default the commit time of that git dir's HEAD, else the Unix epoch.
	Created string `json:"created"`
	// Kustomize says whether to pack `kustomize build` of Path instead of
	// its files: auto (default: when Path holds a kustomization), true, false.
	Kustomize KustomizeMode `json:"kustomize"`
}

// KustomizeMode is params.kustomize: auto, true or false, as a string or a
// YAML boolean.
type KustomizeMode string

// The values of params.kustomize.
const (
	KustomizeAuto  KustomizeMode = "auto"
	KustomizeTrue  KustomizeMode = "true"
	KustomizeFalse KustomizeMode = "false"
)

// UnmarshalJSON implements json.Unmarshaler.
func (k *KustomizeMode) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case bool:
		*k = KustomizeFalse
		if v {
			*k = KustomizeTrue
		}
		return nil
	case string:
		switch m := KustomizeMode(strings.ToLower(v)); m {
		case KustomizeAuto, KustomizeTrue, KustomizeFalse:
			*k = m
			return nil
		}
	}
	return resource.ConfigErrorf("params.kustomize must be auto, true or false")
}

// parseSource decodes and validates the source and registers its secrets.
func parseSource(in resource.Input) (*Source, error) {
	var s Source
	if err := resource.DecodeStrict(in.Request.Source, &s, "source"); err != nil {
		return nil, err
	}
	in.Secrets.Add(s.Password, s.DockerConfig)
	in.Secrets.AddBasicAuth(s.Username, s.Password)
	return &s, s.validate()
}

func (s *Source) validate() error {
	var errs []error
	switch {
	case s.Repository == "":
		errs = append(errs, resource.ConfigErrorf("source.repository is required: the OCI repository, e.g. ghcr.io/acme/web-manifests"))
	case strings.Contains(s.Repository, "://"):
		errs = append(errs, resource.ConfigErrorf("source.repository %q: give it without a scheme (no oci://), e.g. ghcr.io/acme/web-manifests", s.Repository))
	default:
		if r, err := imageref.Parse(s.Repository); err == nil && (r.Tag != "" || r.Digest != "") {
			errs = append(errs, resource.ConfigErrorf("source.repository must not carry a tag or digest: use source.tag or source.semver"))
		} else if _, err := name.NewRepository(s.Repository, name.StrictValidation); err != nil {
			errs = append(errs, resource.ConfigErrorf("source.repository %q is not an OCI repository: %v", s.Repository, err))
		}
	}
	if s.Tag != "" && s.Semver != "" {
		errs = append(errs, resource.ConfigErrorf("source.tag and source.semver cannot both be set: check follows one tag, or the newest tag in a range"))
	}
	if s.Tag != "" {
		if err := imageref.ValidateTag(string(s.Tag)); err != nil {
			errs = append(errs, resource.ConfigErrorf("source.tag: %v", err))
		}
	}
	if s.Semver != "" {
		c, err := semver.NewConstraint(s.Semver)
		if err != nil {
			errs = append(errs, resource.ConfigErrorf("source.semver %q is not a semver range such as \">=1.0.0 <2.0.0\": %v", s.Semver, err))
		}
		s.constraint = c
	} else if s.Tag == "" {
		s.Tag = "latest"
	}
	if s.DockerConfig != "" {
		if s.Username != "" || s.Password != "" {
			errs = append(errs, resource.ConfigErrorf("source.docker_config and source.username/password cannot both be set"))
		}
		if err := registry.ValidateDockerConfig(s.DockerConfig); err != nil {
			errs = append(errs, resource.ConfigErrorf("source.%v", err))
		}
	}
	if (s.Username == "") != (s.Password == "") {
		errs = append(errs, resource.ConfigErrorf("source.username and source.password go together"))
	}
	return errors.Join(errs...)
}

func (s *Source) registryOptions(in resource.Input) []registry.Option {
	return []registry.Option{registry.WithBasicAuth(s.Username, s.Password), registry.WithDockerConfig(s.DockerConfig),
		registry.WithInsecure(s.Insecure), registry.WithLog(in.Log)}
}

// credentialsHint says which fields to check when the registry refuses.
func (s *Source) credentialsHint() string {
	switch {
	case s.DockerConfig != "":
		return "check source.docker_config"
	case s.Username != "":
		return "check source.username and source.password"
	}
	return "the registry wants credentials: set source.username and source.password, or source.docker_config"
}

// The request of each verb, decoded and validated once, every config
// problem reported at once before any network I/O.
type (
	checkRequest struct {
		Source  *Source
		Version *Version // nil on the first check
	}
	inRequest struct {
		Source  *Source
		Params  InParams
		Version Version
	}
	outRequest struct {
		Source *Source
		Params *OutParams
	}
)

func parseCheckRequest(in resource.Input) (checkRequest, error) {
	src, err := parseSource(in)
	v, verr := parseVersion(in, false)
	return checkRequest{Source: src, Version: v}, errors.Join(err, verr)
}

func parseInRequest(in resource.Input) (inRequest, error) {
	req := inRequest{}
	var serr, verr error
	req.Source, serr = parseSource(in)
	perr := resource.DecodeStrict(in.Request.Params, &req.Params, "params")
	v, verr := parseVersion(in, true)
	if v != nil {
		req.Version = *v
	}
	return req, errors.Join(serr, perr, verr)
}

func parseOutRequest(in resource.Input) (outRequest, error) {
	src, err := parseSource(in)
	params, perr := resource.DecodeParams[OutParams](in)
	var terr error
	if src != nil && params != nil && params.Tag == "" && params.TagFile == "" && src.Semver != "" {
		terr = resource.ConfigErrorf("params.tag or params.tag_file is required: source.semver follows a range, so put needs the tag to push (e.g. tag_file: version/number)")
	}
	return outRequest{Source: src, Params: params}, errors.Join(err, perr, terr)
}

// parseVersion decodes the requested version: nil when there is none (the
// first check); in needs one.
func parseVersion(in resource.Input, required bool) (*Version, error) {
	var v Version
	if err := resource.DecodeStrict(in.Request.Version, &v, "version"); err != nil {
		return nil, err
	}
	if v.Tag == "" && v.Digest == "" {
		if required {
			return nil, resource.ConfigErrorf("version.tag and version.digest are required: in runs on a version that check or put emitted")
		}
		return nil, nil
	}
	var errs []error
	if err := imageref.ValidateDigest(v.Digest); err != nil {
		errs = append(errs, resource.ConfigErrorf("version.digest: %v", err))
	}
	if v.Tag != "" {
		if err := imageref.ValidateTag(v.Tag); err != nil {
			errs = append(errs, resource.ConfigErrorf("version.tag: %v", err))
		}
	}
	return &v, errors.Join(errs...)
}

// Validate reports every problem with the params at once.
func (p *OutParams) Validate() error {
	var errs []error
	if p.Path == "" {
		errs = append(errs, resource.ConfigErrorf("params.path is required: the dir of the build dir to pack, e.g. rendered/manifests"))
	} else if _, err := resource.ParamPath("params.path", p.Path); err != nil {
		errs = append(errs, err)
	}
	if p.Tag != "" && p.TagFile != "" {
		errs = append(errs, resource.ConfigErrorf("params.tag and params.tag_file cannot both be set"))
	}
	if p.Tag != "" {
		if err := imageref.ValidateTag(string(p.Tag)); err != nil {
			errs = append(errs, resource.ConfigErrorf("params.tag: %v", err))
		}
	}
	for field, v := range map[string]string{"params.tag_file": p.TagFile, "params.additional_tags": p.AdditionalTags} {
		if v == "" {
			continue
		}
		if _, err := resource.ParamPath(field, v); err != nil {
			errs = append(errs, err)
		}
	}
	if p.Created != "" {
		if _, err := time.Parse(time.RFC3339, p.Created); err != nil {
			errs = append(errs, resource.ConfigErrorf("params.created %q is not an RFC 3339 time such as 2024-05-01T12:00:00Z", p.Created))
		}
	}
	if p.Kustomize == "" {
		p.Kustomize = KustomizeAuto
	}
	return errors.Join(errs...)
}

// timeout is the source's timeout, or the default.
func (s *Source) timeout() time.Duration { return s.Timeout.Or(defaultTimeout) }

// url is how Flux names an artifact: oci://repo:tag@digest.
func url(repo string, v Version) string {
	return fmt.Sprintf("oci://%s:%s@%s", repo, v.Tag, v.Digest)
}
