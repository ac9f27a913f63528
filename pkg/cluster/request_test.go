package cluster

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/pkg/resource"
)

func input(t *testing.T, source, params string) resource.Input {
	t.Helper()
	req := resource.Request{Source: json.RawMessage(source)}
	if params != "" {
		req.Params = json.RawMessage(params)
	}
	return resource.Input{Request: req, Secrets: &resource.Redactor{}}
}

const kc = `"kubeconfig": "apiVersion: v1\nkind: Config\n"`

func TestSourceValidation(t *testing.T) {
	tests := []struct {
		name   string
		source string
		errs   []string
	}{
		{"kubeconfig", `{"kind": "cluster", ` + kc + `}`, nil},
		{"server and token", `{"kind": "cluster", "server": "https://k:6443", "token": "t", "certificate_authority": "pem", "namespace": "prod", "timeout": "2m", "resources": ["deployment/web", "sts/prod/db"]}`, nil},
		{"explicit direct", `{"kind": "cluster", "mode": "direct", ` + kc + `}`, nil},
		{"flux helmrelease alone", `{"kind": "cluster", "mode": "flux", "helmrelease": "web", ` + kc + `}`, nil},
		{"flux kustomization and helmrelease", `{"kind": "cluster", "mode": "flux", "kustomization": "apps", "helmrelease": "web", ` + kc + `}`, nil},
		{"flux needs a kustomization", `{"kind": "cluster", "mode": "flux", ` + kc + `}`, []string{`source.kustomization or source.helmrelease is required for kind cluster with mode flux`}},
		{"argocd needs an application", `{"kind": "cluster", "mode": "argocd", ` + kc + `}`, []string{`source.application is required for kind cluster with mode argocd`}},
		{"flux field in argocd", `{"kind": "cluster", "mode": "argocd", "application": "a", "kustomization": "k", ` + kc + `}`, []string{`source.kustomization and source.helmrelease belong to mode flux`}},
		{"agent field in direct", `{"kind": "cluster", "kustomization": "k", ` + kc + `}`, []string{`belong to modes flux and argocd`}},
		{"unknown mode", `{"kind": "cluster", "mode": "push", ` + kc + `}`, []string{`source.mode "push" is not a mode: use direct, flux or argocd`}},
		{"helmrelease in argocd", `{"kind": "cluster", "mode": "argocd", "application": "a", "helmrelease": "web", ` + kc + `}`, []string{`source.kustomization and source.helmrelease belong to mode flux`}},
		{"helmrelease in direct", `{"kind": "cluster", "helmrelease": "web", ` + kc + `}`, []string{`source.kustomization, source.helmrelease and source.application belong to modes flux and argocd`}},
		{"no credentials", `{"kind": "cluster"}`, []string{"source.kubeconfig (inline YAML) or source.server with source.token is required for kind cluster"}},
		{"both ways", `{"kind": "cluster", "server": "https://k", "token": "t", ` + kc + `}`, []string{"exclude each other"}},
		{"token alone", `{"kind": "cluster", "token": "t"}`, []string{"source.server is required with source.token"}},
		{"server alone", `{"kind": "cluster", "server": "https://k"}`, []string{"source.token is required with source.server"}},
		{"server not a URL", `{"kind": "cluster", "server": "k:6443", "token": "t"}`, []string{`source.server "k:6443" must be a URL`}},
		{"context without kubeconfig", `{"kind": "cluster", "server": "https://k", "token": "t", "context": "prod"}`, []string{"source.context selects a context of source.kubeconfig"}},
		{"insecure with CA", `{"kind": "cluster", "server": "https://k", "token": "t", "certificate_authority": "pem", "insecure_skip_tls_verify": true}`, []string{"contradict"}},
		{"bad resource", `{"kind": "cluster", ` + kc + `, "resources": ["web"]}`, []string{`source.resources[0]: "web" is not kind/name`}},
		{"typo", `{"kind": "cluster", ` + kc + `, "namespce": "x"}`, []string{`unknown key "namespce" (did you mean "namespace"?)`}},
		{"bad timeout", `{"kind": "cluster", ` + kc + `, "timeout": "soon"}`, []string{"source.timeout"}},
		{"several at once", `{"kind": "cluster", "mode": "flux", "token": "t", "resources": ["x"]}`, []string{"source.kustomization or source.helmrelease is required", "source.server is required", "source.resources[0]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseSource(input(t, tt.source, ""))
			if len(tt.errs) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.True(t, resource.IsConfigError(err), "config errors are terminal")
			for _, e := range tt.errs {
				require.ErrorContains(t, err, e)
			}
		})
	}
}

func TestSecretsAreRegisteredBeforeDecoding(t *testing.T) {
	in := input(t, `{"kind": "cluster", "token": "tok-0123456789abcdef", "kubeconfig": "users: [{name: u, user: {token: inner-secret-token-0123}}]", "bogus": 1}`, "")
	_, err := parseSource(in)
	require.Error(t, err)
	require.Equal(t, "a [redacted] b", in.Secrets.String("a tok-0123456789abcdef b"))
	require.NotContains(t, in.Secrets.String("users: [{name: u, user: {token: inner-secret-token-0123}}]"), "inner-secret-token-0123")
}

func TestOutParamsValidation(t *testing.T) {
	tests := []struct {
		name   string
		params string
		errs   []string
		check  func(t *testing.T, p *OutParams)
	}{
		{"minimal", `{"path": "config"}`, nil, func(t *testing.T, p *OutParams) {
			require.True(t, p.wait(), "wait defaults to true")
		}},
		{"everything", `{"path": "config", "prune": true, "wait": true, "timeout": "10m", "rollback_on_failure": true, "restart": true, "verify_images": true, "revision_file": "config/.git/ref"}`, nil,
			func(t *testing.T, p *OutParams) { require.True(t, p.Restart.All) }},
		{"restart list", `{"path": "c", "restart": ["deployment/web", "sts/prod/db"]}`, nil, func(t *testing.T, p *OutParams) {
			require.Equal(t, []Selector{{"deployment", "", "web"}, {"sts", "prod", "db"}}, p.Restart.Selected)
		}},
		{"no wait", `{"path": "c", "wait": false}`, nil, func(t *testing.T, p *OutParams) { require.False(t, p.wait()) }},
		{"path required", `{}`, []string{"params.path is required"}, nil},
		{"bad restart", `{"path": "c", "restart": "yes"}`, []string{"params.restart: expected true or a list"}, nil},
		{"dry run with prune", `{"path": "c", "dry_run": true, "prune": true}`, []string{"params.dry_run changes nothing"}, nil},
		{"rollback without wait", `{"path": "c", "wait": false, "rollback_on_failure": true}`, []string{"need wait: true"}, nil},
		{"typo", `{"path": "c", "dryrun": true}`, []string{`unknown key "dryrun" (did you mean "dry_run"?)`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := parseOutParams(input(t, `{}`, tt.params))
			if len(tt.errs) == 0 {
				require.NoError(t, err)
				tt.check(t, p)
				return
			}
			require.Error(t, err)
			for _, e := range tt.errs {
				require.ErrorContains(t, err, e)
			}
		})
	}
}

func TestSelectors(t *testing.T) {
	for s, want := range map[string]Selector{
		"deployment/web":      {"deployment", "", "web"},
		"deploy/prod/web":     {"deploy", "prod", "web"},
		"statefulset.apps/db": {"statefulset.apps", "", "db"},
	} {
		got, err := ParseSelector(s)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	for _, bad := range []string{"web", "a/b/c/d", "/web", "deployment/"} {
		_, err := ParseSelector(bad)
		require.Error(t, err, bad)
	}
	for sel, kind := range map[string]string{"deploy": "Deployment", "deployments": "Deployment", "Deployment": "Deployment", "sts": "StatefulSet", "daemonset.apps": "DaemonSet"} {
		require.True(t, kindMatches(sel, kind), sel)
	}
	require.False(t, kindMatches("deploy", "StatefulSet"))
}

func TestAgentParamsValidation(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ref"), []byte("3becd003b8704fbc0c7e3f041ff27c51e53ed5f6\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "empty"), nil, 0o644))
	tests := []struct {
		name, mode, params string
		errs               []string
		revision           string
	}{
		{"revision", ModeFlux, `{"revision": "main@sha1:abc1234", "timeout": "2m"}`, nil, "main@sha1:abc1234"},
		{"revision_file is read and trimmed", ModeArgoCD, `{"revision_file": "ref", "sync": true, "prune": true}`, nil, "3becd003b8704fbc0c7e3f041ff27c51e53ed5f6"},
		{"one of them is required", ModeFlux, `{}`, []string{"params.revision or params.revision_file is required for mode flux"}, ""},
		{"not both", ModeFlux, `{"revision": "a", "revision_file": "ref"}`, []string{"exclude each other"}, ""},
		{"sync is argocd's", ModeFlux, `{"revision": "a", "sync": true}`, []string{"params.sync and params.prune belong to mode argocd"}, ""},
		{"prune needs sync", ModeArgoCD, `{"revision": "a", "prune": true}`, []string{"set sync: true"}, ""},
		{"empty revision_file", ModeFlux, `{"revision_file": "empty"}`, []string{"params.revision_file empty is empty"}, ""},
		{"revision_file outside the build dir", ModeFlux, `{"revision_file": "../ref"}`, []string{"params.revision_file"}, ""},
		{"typo", ModeFlux, `{"revison": "a"}`, []string{`unknown key "revison" (did you mean "revision"?)`}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := input(t, `{}`, tt.params)
			in.Dir = dir
			p, err := parseAgentParams(in, tt.mode)
			if len(tt.errs) == 0 {
				require.NoError(t, err)
				require.Equal(t, tt.revision, p.Revision)
				return
			}
			require.Error(t, err)
			require.True(t, resource.IsConfigError(err), "config errors are terminal")
			for _, e := range tt.errs {
				require.ErrorContains(t, err, e)
			}
		})
	}
}
