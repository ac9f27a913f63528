package cluster

import (
	"encoding/json"

	"github.com/gitops-resource/gitops-resource/pkg/kube"
	"github.com/gitops-resource/gitops-resource/pkg/resource"
)

// CredentialFiles are put params naming files in the build dir that hold
// the credentials, as a secrets resource's get writes them; they stand in
// for source.kubeconfig, source.token and source.certificate_authority.
// Only put has them: Concourse runs check with no dir at all and get with
// only its own empty destination, so neither can read a file.
type CredentialFiles struct {
	KubeconfigFile           string `json:"kubeconfig_file"`
	TokenFile                string `json:"token_file"`
	CertificateAuthorityFile string `json:"certificate_authority_file"`
}

// putCredentialFiles are the credential files a put's params name. The
// params are decoded strictly, every key checked, with the rest of them
// (resource.DecodeParams, parseAgentParams); a source is validated with these.
func putCredentialFiles(in resource.Input) CredentialFiles {
	var f CredentialFiles
	_ = json.Unmarshal(in.Request.Params, &f)
	return f
}

// validateCredentials: one way to connect, from the source or from files.
func (s *Source) validateCredentials() []error {
	f := s.files
	kubeconfig := s.Kubeconfig != "" || f.KubeconfigFile != ""
	token := s.Token != "" || f.TokenFile != ""
	ca := s.CertificateAuthority != "" || f.CertificateAuthorityFile != ""
	var errs []error
	for _, both := range []struct {
		inline, file string
		set          bool
	}{
		{"source.kubeconfig", "params.kubeconfig_file", s.Kubeconfig != "" && f.KubeconfigFile != ""},
		{"source.token", "params.token_file", s.Token != "" && f.TokenFile != ""},
		{"source.certificate_authority", "params.certificate_authority_file", s.CertificateAuthority != "" && f.CertificateAuthorityFile != ""},
	} {
		if both.set {
			errs = append(errs, resource.ConfigErrorf("%s and %s exclude each other: keep one", both.inline, both.file))
		}
	}
	switch {
	case f.KubeconfigFile != "" && (s.Server != "" || token || ca):
		errs = append(errs, resource.ConfigErrorf("params.kubeconfig_file and source.server/token/certificate_authority (or params.token_file/certificate_authority_file) exclude each other: use one way to connect"))
	case s.Kubeconfig != "" && (s.Server != "" || token || ca):
		errs = append(errs, resource.ConfigErrorf("source.kubeconfig and source.server/token/certificate_authority exclude each other: use one way to connect"))
	case !kubeconfig && s.Server == "" && !token:
		errs = append(errs, resource.ConfigErrorf("source.kubeconfig (inline YAML) or source.server with source.token is required for kind cluster (a put may read them from files instead: params.kubeconfig_file, or params.token_file with source.server)"))
	case !kubeconfig && s.Server == "" && f.TokenFile != "":
		errs = append(errs, resource.ConfigErrorf("source.server is required with params.token_file: the API server URL, e.g. https://host:6443"))
	case !kubeconfig && s.Server == "":
		errs = append(errs, resource.ConfigErrorf("source.server is required with source.token: the API server URL, e.g. https://host:6443"))
	case !kubeconfig && !token:
		errs = append(errs, resource.ConfigErrorf("source.token is required with source.server (or, in a put, params.token_file)"))
	}
	if s.Context != "" && !kubeconfig {
		errs = append(errs, resource.ConfigErrorf("source.context selects a context of source.kubeconfig: set kubeconfig or drop context"))
	}
	if s.InsecureSkipTLSVerify && ca {
		errs = append(errs, resource.ConfigErrorf("source.insecure_skip_tls_verify and source.certificate_authority contradict each other: keep one"))
	}
	return errs
}

// readCredentialFiles reads the credential files into the source,
// registering their secrets with the redactor as the inline values are.
func (s *Source) readCredentialFiles(in resource.Input) error {
	for _, f := range []struct {
		field, path string
		into        *string
		secret      bool
	}{
		{"params.kubeconfig_file", s.files.KubeconfigFile, &s.Kubeconfig, true},
		{"params.token_file", s.files.TokenFile, &s.Token, true},
		{"params.certificate_authority_file", s.files.CertificateAuthorityFile, &s.CertificateAuthority, false},
	} {
		if f.path == "" {
			continue
		}
		v, err := in.ReadParamFile(f.field, f.path)
		if err != nil {
			return err
		}
		if f.secret {
			in.Secrets.Add(v)
		}
		if f.into == &s.Kubeconfig {
			in.Secrets.Add(kube.KubeconfigSecrets([]byte(v))...)
		}
		if v == "" {
			return resource.ConfigErrorf("%s %s is empty", f.field, f.path)
		}
		*f.into = v
	}
	return nil
}
