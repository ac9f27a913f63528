package semver

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/gitops-resource/gitops-resource/pkg/gitrepo"
	"github.com/gitops-resource/gitops-resource/pkg/resource"
)

// Source configures the kind.
type Source struct {
	Kind string `json:"kind"`
	gitrepo.Source
	Driver         string          `json:"driver"`
	File           string          `json:"file"`
	InitialVersion resource.String `json:"initial_version"`
	CommitMessage  string          `json:"commit_message"`
	Depth          int             `json:"depth"`
	TagPrefix      *string         `json:"tag_prefix"`

	initial *semver.Version
}

// Version is what the kind emits.
type Version struct {
	Number string `json:"number"`
}

// Params are the params of in and out.
type Params struct {
	Bump                string `json:"bump"`
	Pre                 string `json:"pre"`
	PreWithoutVersion   bool   `json:"pre_without_version"`
	Build               string `json:"build"`
	BuildWithoutVersion bool   `json:"build_without_version"`
	File                string `json:"file"`
	GetLatest           bool   `json:"get_latest"`
	RefFile             string `json:"ref_file"`
}

const (
	driverGit  = "git"
	driverTags = "tags"
)

// parseSource decodes, defaults and validates the source, and registers its
// secrets.
func parseSource(in resource.Input) (*Source, error) {
	var s Source
	if err := resource.DecodeStrict(in.Request.Source, &s, "source"); err != nil {
		return nil, err
	}
	s.Secrets(in.Secrets)
	if s.Driver == "" {
		s.Driver = driverGit
	}
	if s.TagPrefix == nil {
		p := "v"
		s.TagPrefix = &p
	}
	if s.InitialVersion == "" {
		s.InitialVersion = "0.0.0"
	}
	if s.CommitMessage == "" {
		s.CommitMessage = "bump to %version%"
	}
	return &s, s.validate()
}

func (s *Source) validate() error {
	errs := []error{s.Source.Validate("semver")}
	switch s.Driver {
	case driverGit:
		if s.File == "" {
			errs = append(errs, resource.ConfigErrorf("source.file is required for kind semver with driver git"))
		} else if err := gitrepo.ValidPath(s.File); err != nil {
			errs = append(errs, resource.ConfigErrorf("source.file: %v", err))
		}
	case driverTags:
		if s.File != "" {
			errs = append(errs, resource.ConfigErrorf("source.file is not used with driver tags: versions are the tags %s<number>", *s.TagPrefix))
		}
		if err := gitrepo.ValidTag(*s.TagPrefix + "0.0.0"); err != nil {
			errs = append(errs, resource.ConfigErrorf("source.tag_prefix %q makes tags git refuses: %v", *s.TagPrefix, err))
		}
	default:
		errs = append(errs, resource.ConfigErrorf("source.driver %q is not supported: use git (a file on a branch) or tags", s.Driver))
	}
	v, err := parseNumber(string(s.InitialVersion))
	if err != nil {
		errs = append(errs, resource.ConfigErrorf("source.initial_version: %v", err))
	}
	s.initial = v
	if _, err := s.commitMessage("", ""); err != nil {
		errs = append(errs, resource.ConfigErrorf("source.commit_message: %v", err))
	}
	if s.Depth < 0 {
		errs = append(errs, resource.ConfigErrorf("source.depth must not be negative"))
	}
	return errors.Join(errs...)
}

func parseNumber(s string) (*semver.Version, error) {
	v, err := semver.StrictNewVersion(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("%q is not a semantic version such as 1.2.3 or 1.2.3-rc.1", s)
	}
	return v, nil
}

// maxQuoted bounds how much of a file's content an error quotes: a 5 MB
// file in the wrong place never floods the build log.
const maxQuoted = 200

// parseFileNumber reads a version file as semver-resource does: the first
// whitespace-separated token is the number ("1.2.3\n", "  1.2.3 junk" read
// as 1.2.3). An error quotes at most maxQuoted bytes of the content.
func parseFileNumber(content string) (*semver.Version, error) {
	fields := strings.Fields(content)
	if len(fields) == 0 {
		return nil, fmt.Errorf("the file is empty: it should hold a semantic version such as 1.2.3")
	}
	v, err := semver.StrictNewVersion(fields[0])
	if err != nil {
		quoted := content
		if len(quoted) > maxQuoted {
			quoted = strings.ToValidUTF8(quoted[:maxQuoted], "") + "…"
		}
		return nil, fmt.Errorf("%q is not a semantic version such as 1.2.3 or 1.2.3-rc.1", quoted)
	}
	return v, nil
}

// The request of each verb, decoded and validated once (parseCheckRequest,
// parseInRequest, parseOutRequest) with every config problem reported at
// once before any network I/O, then passed down as it is.
type (
	checkRequest struct {
		Source *Source
		// Version is the version check reports from; nil on the first check.
		Version *semver.Version
	}
	inRequest struct {
		Source  *Source
		Params  *Params
		Version *semver.Version
	}
	outRequest struct {
		Source *Source
		Params *Params
	}
)

func parseCheckRequest(in resource.Input) (checkRequest, error) {
	src, err := parseSource(in)
	v, verr := parseVersion(in, false)
	return checkRequest{Source: src, Version: v}, errors.Join(err, verr)
}

func parseInRequest(in resource.Input) (inRequest, error) {
	src, serr := parseSource(in)
	params, perr := resource.DecodeParams[Params](in)
	v, verr := parseVersion(in, true)
	errs := []error{serr, perr, verr}
	if params != nil && (params.Bump == "auto" || params.File != "" || params.GetLatest || params.RefFile != "") {
		errs = append(errs, resource.ConfigErrorf("get params may only be bump (major, minor, patch, final), pre and build"))
	}
	return inRequest{Source: src, Params: params, Version: v}, errors.Join(errs...)
}

func parseOutRequest(in resource.Input) (outRequest, error) {
	src, serr := parseSource(in)
	params, perr := resource.DecodeParams[Params](in)
	errs := []error{serr, perr}
	if src != nil {
		errs = append(errs, src.LoadSigner())
	}
	if params != nil && !params.changes() && params.File == "" && !params.GetLatest {
		errs = append(errs, resource.ConfigErrorf("params: nothing to do: set bump, pre or build to bump, file to set a version, or get_latest"))
	}
	if params != nil && src != nil && params.RefFile != "" && src.Driver != driverTags {
		errs = append(errs, resource.ConfigErrorf("params.ref_file only applies to driver tags"))
	}
	return outRequest{Source: src, Params: params}, errors.Join(errs...)
}

// parseVersion decodes the requested version: nil when there is none (the
// first check); in needs one.
func parseVersion(in resource.Input, required bool) (*semver.Version, error) {
	var v Version
	if err := resource.DecodeStrict(in.Request.Version, &v, "version"); err != nil {
		return nil, err
	}
	if v.Number == "" {
		if required {
			return nil, resource.ConfigErrorf("version.number is required: in runs on a version that check emitted")
		}
		return nil, nil
	}
	n, err := parseNumber(v.Number)
	if err != nil {
		return nil, resource.ConfigErrorf("version.number: %v", err)
	}
	return n, nil
}

// label is a valid pre-release or build identifier.
var label = regexp.MustCompile(`^[0-9A-Za-z-]+$`)

// Validate reports every problem with the params at once.
func (p Params) Validate() error {
	var errs []error
	if _, ok := LevelBump(p.Bump); p.Bump != "" && p.Bump != "auto" && !ok {
		errs = append(errs, resource.ConfigErrorf("params.bump %q is not a bump: use major, minor, patch, final or auto", p.Bump))
	}
	if p.Pre != "" && !label.MatchString(p.Pre) {
		errs = append(errs, resource.ConfigErrorf("params.pre %q must be letters, digits and hyphens (e.g. rc)", p.Pre))
	}
	if p.Build != "" && !label.MatchString(p.Build) {
		errs = append(errs, resource.ConfigErrorf("params.build %q must be letters, digits and hyphens", p.Build))
	}
	if p.PreWithoutVersion && p.Pre == "" {
		errs = append(errs, resource.ConfigErrorf("params.pre_without_version needs params.pre"))
	}
	if p.BuildWithoutVersion && p.Build == "" {
		errs = append(errs, resource.ConfigErrorf("params.build_without_version needs params.build"))
	}
	if p.File != "" && (p.Bump != "" || p.Pre != "" || p.Build != "") {
		errs = append(errs, resource.ConfigErrorf("params.file sets the version as it is: it cannot be combined with bump, pre or build"))
	}
	if p.GetLatest && (p.File != "" || p.Bump != "" || p.Pre != "" || p.Build != "") {
		errs = append(errs, resource.ConfigErrorf("params.get_latest returns the current version: it cannot be combined with file, bump, pre or build"))
	}
	return errors.Join(errs...)
}

// bump composes the params into one Bump; auto is resolved to level first.
func (p Params) bump(autoLevel string) Bump {
	var bs Bumps
	level := p.Bump
	if level == "auto" {
		level = autoLevel
	}
	if b, ok := LevelBump(level); ok {
		bs = append(bs, b)
	}
	if p.Pre != "" {
		bs = append(bs, PreBump{p.Pre, p.PreWithoutVersion})
	}
	if p.Build != "" {
		bs = append(bs, BuildBump{p.Build, p.BuildWithoutVersion})
	}
	return bs
}

func (p Params) changes() bool { return p.Bump != "" || p.Pre != "" || p.Build != "" }

func (p Params) describe() string {
	var parts []string
	for k, v := range map[string]string{"bump": p.Bump, "pre": p.Pre, "build": p.Build} {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// commitMessage is commit_message with %version% and %file% replaced, as
// semver-resource does; another %name% is an error (a typo would otherwise
// land in every bump commit).
func (s *Source) commitMessage(version, file string) (string, error) {
	return resource.Expand(s.CommitMessage, map[string]string{"version": version, "file": file})
}
