package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gitops-resource/gitops-resource/pkg/kube"
	"github.com/gitops-resource/gitops-resource/pkg/resource"
)

// DefaultTimeout bounds a step's apply and wait.
const DefaultTimeout = 5 * time.Minute

// The modes of the kind.
const (
	ModeDirect = "direct"
	ModeFlux   = "flux"
	ModeArgoCD = "argocd"
)

// Source configures the kind.
type Source struct {
	Kind                  string            `json:"kind"`
	Mode                  string            `json:"mode"`
	Kubeconfig            string            `json:"kubeconfig"`
	Server                string            `json:"server"`
	Token                 string            `json:"token"`
	CertificateAuthority  string            `json:"certificate_authority"`
	Context               string            `json:"context"`
	Namespace             string            `json:"namespace"`
	InsecureSkipTLSVerify bool              `json:"insecure_skip_tls_verify"`
	Resources             []string          `json:"resources"`
	Timeout               resource.Duration `json:"timeout"`
	// Kustomization names the Flux Kustomization to wait for (mode flux).
	Kustomization string `json:"kustomization"`
	// Application names the Argo CD Application to wait for (mode argocd).
	Application string `json:"application"`
	// HelmRelease names the Flux HelmRelease to wait for (mode flux): with
	// Kustomization, the one it applies; alone, one whose chart comes from a
	// GitRepository (helm.go).
	HelmRelease string `json:"helmrelease"`

	selected []Selector
	// files are a put's credential params (credfiles.go), read into
	// Kubeconfig, Token and CertificateAuthority once valid.
	files CredentialFiles
}

// Version is what the kind emits.
type Version struct {
	Revision string `json:"revision"`
}

// Selector names one object in source.resources: kind/name or
// kind/namespace/name (kind as in kubectl: deployment, deploy, Deployment,
// statefulset.apps ...).
type Selector struct {
	Kind, Namespace, Name string
}

func (s Selector) String() string {
	if s.Namespace != "" {
		return s.Kind + "/" + s.Namespace + "/" + s.Name
	}
	return s.Kind + "/" + s.Name
}

// ParseSelector parses "kind/name" or "kind/namespace/name".
func ParseSelector(s string) (Selector, error) {
	parts := strings.Split(s, "/")
	for _, p := range parts {
		if p == "" {
			parts = nil
		}
	}
	switch len(parts) {
	case 2:
		return Selector{Kind: parts[0], Name: parts[1]}, nil
	case 3:
		return Selector{Kind: parts[0], Namespace: parts[1], Name: parts[2]}, nil
	}
	return Selector{}, fmt.Errorf("%q is not kind/name or kind/namespace/name (e.g. deployment/web)", s)
}

// parseSource decodes, defaults and validates the source of a check or a
// get, and registers its secrets before anything can print them.
func parseSource(in resource.Input) (*Source, error) {
	return parseSourceWith(in, CredentialFiles{})
}

// parseSourceWith is parseSource with the credential files of a put's
// params, read into the source once it is valid.
func parseSourceWith(in resource.Input, files CredentialFiles) (*Source, error) {
	var s Source
	// Register secrets first, from the raw JSON, so even a source that fails
	// to decode cannot leak them.
	var raw map[string]json.RawMessage
	if json.Unmarshal(in.Request.Source, &raw) == nil {
		for _, k := range []string{"kubeconfig", "token"} {
			var v string
			if json.Unmarshal(raw[k], &v) == nil {
				in.Secrets.Add(v)
				if k == "kubeconfig" {
					in.Secrets.Add(kube.KubeconfigSecrets([]byte(v))...)
				}
			}
		}
	}
	if err := resource.DecodeStrict(in.Request.Source, &s, "source"); err != nil {
		return nil, err
	}
	if s.Mode == "" {
		s.Mode = ModeDirect
	}
	if s.Namespace == "" {
		s.Namespace = map[string]string{ModeFlux: "flux-system", ModeArgoCD: "argocd"}[s.Mode]
	}
	s.files = files
	if err := s.validate(); err != nil {
		return &s, err
	}
	return &s, s.readCredentialFiles(in)
}

func (s *Source) validate() error {
	var errs []error
	switch s.Mode {
	case ModeDirect:
		if s.Kustomization != "" || s.Application != "" || s.HelmRelease != "" {
			errs = append(errs, resource.ConfigErrorf("source.kustomization, source.helmrelease and source.application belong to modes flux and argocd, not direct"))
		}
	case ModeFlux:
		if s.Kustomization == "" && s.HelmRelease == "" {
			errs = append(errs, resource.ConfigErrorf("source.kustomization or source.helmrelease is required for kind cluster with mode flux: the Flux Kustomization that applies the config repo, or a HelmRelease whose chart comes from it"))
		}
		if s.Application != "" {
			errs = append(errs, resource.ConfigErrorf("source.application belongs to mode argocd, not flux"))
		}
	case ModeArgoCD:
		if s.Application == "" {
			errs = append(errs, resource.ConfigErrorf("source.application is required for kind cluster with mode argocd: the Argo CD Application to sync"))
		}
		if s.Kustomization != "" || s.HelmRelease != "" {
			errs = append(errs, resource.ConfigErrorf("source.kustomization and source.helmrelease belong to mode flux, not argocd"))
		}
	default:
		errs = append(errs, resource.ConfigErrorf("source.mode %q is not a mode: use direct, flux or argocd", s.Mode))
	}
	errs = append(errs, s.validateCredentials()...)
	if s.Server != "" && !strings.HasPrefix(s.Server, "https://") && !strings.HasPrefix(s.Server, "http://") {
		errs = append(errs, resource.ConfigErrorf("source.server %q must be a URL such as https://host:6443", s.Server))
	}
	for i, r := range s.Resources {
		sel, err := ParseSelector(r)
		if err != nil {
			errs = append(errs, resource.ConfigErrorf("source.resources[%d]: %v", i, err))
			continue
		}
		s.selected = append(s.selected, sel)
	}
	return errors.Join(errs...)
}

// client connects as the source says.
func (s *Source) client(log io.Writer) (*kube.Client, error) {
	opts := []kube.Option{kube.WithLog(log), kube.WithNamespace(s.Namespace)}
	if s.Kubeconfig != "" {
		opts = append(opts, kube.WithKubeconfig([]byte(s.Kubeconfig), s.Context))
	} else {
		opts = append(opts, kube.WithToken(s.Server, s.Token, []byte(s.CertificateAuthority)))
	}
	if s.InsecureSkipTLSVerify {
		opts = append(opts, kube.WithInsecureSkipTLSVerify())
	}
	c, err := kube.New(opts...)
	var ce kube.ConfigError
	if errors.As(err, &ce) {
		if rest, ok := strings.CutPrefix(ce.Msg, "kubeconfig"); ok && s.files.KubeconfigFile != "" {
			return nil, resource.ConfigErrorf("params.kubeconfig_file %s%s", s.files.KubeconfigFile, rest)
		}
		return nil, resource.ConfigErrorf("source.%s", ce.Msg)
	}
	return c, err
}

// OutParams are the params of put.
type OutParams struct {
	CredentialFiles
	Path              string            `json:"path"`
	Prune             bool              `json:"prune"`
	DryRun            bool              `json:"dry_run"`
	Wait              *bool             `json:"wait"`
	Timeout           resource.Duration `json:"timeout"`
	RollbackOnFailure bool              `json:"rollback_on_failure"`
	Restart           Restart           `json:"restart"`
	VerifyImages      bool              `json:"verify_images"`
	RevisionFile      string            `json:"revision_file"`
	// ForceConflicts takes the fields other field managers own (an
	// operator's label, an HPA's replicas) instead of failing.
	ForceConflicts bool `json:"force_conflicts"`
	// RecreateOnImmutable deletes and creates again an object whose change
	// the server refuses as immutable (a Job's template, a selector).
	RecreateOnImmutable bool `json:"recreate_on_immutable"`
}

// Restart is restart: true (every workload of the set) or a list of
// selectors (deployment/web).
type Restart struct {
	All      bool
	Selected []Selector
}

// UnmarshalJSON accepts a bool or a list of strings.
func (r *Restart) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &r.All); err == nil {
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return resource.ConfigErrorf("params.restart: expected true or a list such as [deployment/web]")
	}
	for _, s := range list {
		sel, err := ParseSelector(s)
		if err != nil {
			return resource.ConfigErrorf("params.restart: %v", err)
		}
		r.Selected = append(r.Selected, sel)
	}
	return nil
}

func (r Restart) any() bool { return r.All || len(r.Selected) > 0 }

// Validate reports every problem with the params at once.
func (p *OutParams) Validate() error {
	var errs []error
	if p.Path == "" {
		errs = append(errs, resource.ConfigErrorf("params.path is required for put to kind cluster (mode direct): a YAML file or a dir of manifests in the build dir"))
	}
	if p.DryRun && (p.RollbackOnFailure || p.Restart.any() || p.Prune) {
		errs = append(errs, resource.ConfigErrorf("params.dry_run changes nothing: it cannot be combined with prune, restart or rollback_on_failure"))
	}
	if p.Wait != nil && !*p.Wait && (p.RollbackOnFailure || p.VerifyImages) {
		errs = append(errs, resource.ConfigErrorf("params.rollback_on_failure and params.verify_images need wait: true"))
	}
	return errors.Join(errs...)
}

func (p *OutParams) wait() bool { return p.Wait == nil || *p.Wait }

// InParams are the params of get.
type InParams struct {
	Timeout resource.Duration `json:"timeout"`
}

// AgentParams are the put params of modes flux and argocd.
type AgentParams struct {
	CredentialFiles
	// Revision is the commit (or OCI digest) to wait for.
	Revision string `json:"revision"`
	// RevisionFile holds it, e.g. a manifest get's .git/ref.
	RevisionFile string            `json:"revision_file"`
	Timeout      resource.Duration `json:"timeout"`
	// Sync (argocd) starts a sync operation to the revision, for
	// Applications without automated sync; Prune prunes in that sync.
	Sync  bool `json:"sync"`
	Prune bool `json:"prune"`
	// VerifyImages checks, once the agent reports the revision applied and
	// healthy, that the pods of the workloads it manages run the digests
	// their pod templates pin (verify.go).
	VerifyImages bool `json:"verify_images"`
}

// parseAgentParams decodes and validates the params of a put in mode flux
// or argocd, and reads params.revision_file into Revision.
func parseAgentParams(in resource.Input, mode string) (*AgentParams, error) {
	var p AgentParams
	if err := resource.DecodeStrict(in.Request.Params, &p, "params"); err != nil {
		return nil, err
	}
	var errs []error
	switch {
	case p.Revision == "" && p.RevisionFile == "":
		errs = append(errs, resource.ConfigErrorf("params.revision or params.revision_file is required for mode %s: the commit or artifact to wait for (a manifest get's .git/ref, an artifact get's digest)", mode))
	case p.Revision != "" && p.RevisionFile != "":
		errs = append(errs, resource.ConfigErrorf("params.revision and params.revision_file exclude each other"))
	}
	if mode != ModeArgoCD && (p.Sync || p.Prune) {
		errs = append(errs, resource.ConfigErrorf("params.sync and params.prune belong to mode argocd"))
	}
	if p.Prune && !p.Sync {
		errs = append(errs, resource.ConfigErrorf("params.prune applies to the sync params.sync starts: set sync: true"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if p.RevisionFile != "" {
		rev, err := in.ReadParamFile("params.revision_file", p.RevisionFile)
		if err != nil {
			return nil, err
		}
		if rev == "" {
			return nil, resource.ConfigErrorf("params.revision_file %s is empty", p.RevisionFile)
		}
		p.Revision = rev
	}
	return &p, nil
}

// The request of each verb, decoded and validated once (parseCheckRequest,
// parseInRequest, parseOutRequest) with every config problem reported at
// once before any network I/O, then passed down to the mode as it is.
type (
	checkRequest struct {
		Source *Source
	}
	inRequest struct {
		Source  *Source
		Params  InParams
		Version Version
	}
	// outRequest holds Params in mode direct, Agent in modes flux and
	// argocd.
	outRequest struct {
		Source *Source
		Params *OutParams
		Agent  *AgentParams
	}
)

func parseCheckRequest(in resource.Input) (checkRequest, error) {
	src, err := parseSource(in)
	return checkRequest{Source: src}, errors.Join(err, src.requireResources())
}

func parseInRequest(in resource.Input) (inRequest, error) {
	var req inRequest
	src, err := parseSource(in)
	req.Source = src
	errs := []error{err, resource.DecodeStrict(in.Request.Params, &req.Params, "params")}
	if err := resource.DecodeStrict(in.Request.Version, &req.Version, "version"); err != nil {
		errs = append(errs, err)
	} else if req.Version.Revision == "" && src != nil && src.Mode != ModeDirect {
		errs = append(errs, resource.ConfigErrorf("version.revision is required: get runs on a version that check emitted"))
	}
	return req, errors.Join(append(errs, src.requireResources())...)
}

func parseOutRequest(in resource.Input) (outRequest, error) {
	var req outRequest
	src, err := parseSourceWith(in, putCredentialFiles(in))
	req.Source = src
	mode := ModeDirect // a source that does not decode has its params judged as direct's
	if src != nil {
		mode = src.Mode
	}
	var perr error
	if mode == ModeFlux || mode == ModeArgoCD {
		req.Agent, perr = parseAgentParams(in, mode)
	} else {
		req.Params, perr = resource.DecodeParams[OutParams](in)
	}
	return req, errors.Join(err, perr)
}

// requireResources: check and get with mode direct report the objects of
// source.resources.
func (s *Source) requireResources() error {
	if s != nil && s.Mode == ModeDirect && len(s.Resources) == 0 {
		return resource.ConfigErrorf("source.resources is required for check and get with mode direct: the workloads to report, e.g. [deployment/web]")
	}
	return nil
}

// timeout bounds a step: the param's timeout, else source.timeout, else
// DefaultTimeout.
func (s *Source) timeout(param resource.Duration) time.Duration {
	return param.Or(s.Timeout.Or(DefaultTimeout))
}

func (r checkRequest) source() *Source        { return r.Source }
func (r checkRequest) timeout() time.Duration { return r.Source.timeout(0) }

func (r inRequest) source() *Source        { return r.Source }
func (r inRequest) timeout() time.Duration { return r.Source.timeout(r.Params.Timeout) }

func (r outRequest) source() *Source { return r.Source }

func (r outRequest) timeout() time.Duration {
	if r.Agent != nil {
		return r.Source.timeout(r.Agent.Timeout)
	}
	return r.Source.timeout(r.Params.Timeout)
}
