package cluster

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

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

// requireConfigErrors: err is a config error (terminal) naming each of want.
func requireConfigErrors(t *testing.T, err error, want []string) {
	t.Helper()
	require.Error(t, err)
	require.True(t, resource.IsConfigError(err), "config errors are terminal")
	for _, e := range want {
		require.ErrorContains(t, err, e)
	}
}

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
			requireConfigErrors(t, err, tt.errs)
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
			p, err := resource.DecodeParams[OutParams](input(t, `{}`, tt.params))
			if len(tt.errs) == 0 {
				require.NoError(t, err)
				tt.check(t, p)
				return
			}
			requireConfigErrors(t, err, tt.errs)
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
			requireConfigErrors(t, err, tt.errs)
		})
	}
}

// TestRequestsAreDecodedOncePerVerb: each verb's request is decoded and
// validated in one place, every problem at once, its params judged as the
// mode reads them, and the mode picked from the valid source.
func TestRequestsAreDecodedOncePerVerb(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ref"), []byte("3becd003b8704fbc0c7e3f041ff27c51e53ed5f6\n"), 0o644))
	parse := map[string]func(resource.Input) (any, error){
		"check": func(in resource.Input) (any, error) { return parseCheckRequest(in) },
		"in":    func(in resource.Input) (any, error) { return parseInRequest(in) },
		"out":   func(in resource.Input) (any, error) { return parseOutRequest(in) },
	}
	tests := []struct {
		name, verb, source, params, version string
		errs                                []string
		check                               func(t *testing.T, req any)
	}{
		{name: "check direct", verb: "check", source: `{"kind": "cluster", "resources": ["deployment/web"], ` + kc + `}`,
			check: func(t *testing.T, req any) {
				require.Equal(t, []Selector{{"deployment", "", "web"}}, req.(checkRequest).Source.selected)
				require.IsType(t, direct{}, modeOf(req.(checkRequest).Source))
			}},
		{name: "check direct needs resources", verb: "check", source: `{"kind": "cluster", "context": "x", "server": "https://k", "token": "t"}`,
			errs: []string{"source.context selects a context", "source.resources is required for check and get with mode direct"}},
		{name: "check flux needs no resources", verb: "check", source: `{"kind": "cluster", "mode": "flux", "kustomization": "apps", ` + kc + `}`,
			check: func(t *testing.T, req any) { require.Equal(t, agent{flux{}}, modeOf(req.(checkRequest).Source)) }},
		{name: "in: the params and the version", verb: "in", source: `{"kind": "cluster", "timeout": "1m", "resources": ["deploy/web"], ` + kc + `}`,
			params: `{"timeout": "2m"}`, version: `{"revision": "web=nginx:1"}`,
			check: func(t *testing.T, req any) {
				r := req.(inRequest)
				require.Equal(t, "web=nginx:1", r.Version.Revision)
				require.Equal(t, 2*time.Minute, r.timeout())
			}},
		{name: "in direct takes an empty version", verb: "in", source: `{"kind": "cluster", "resources": ["deploy/web"], ` + kc + `}`, version: `{}`,
			check: func(t *testing.T, req any) { require.Equal(t, DefaultTimeout, req.(inRequest).timeout()) }},
		{name: "in: every problem at once", verb: "in", source: `{"kind": "cluster", ` + kc + `}`, params: `{"timeout": "soon"}`, version: `{"revison": "x"}`,
			errs: []string{"params.timeout", `version: unknown key "revison"`, "source.resources is required"}},
		{name: "in argocd needs a revision", verb: "in", source: `{"kind": "cluster", "mode": "argocd", "application": "web", ` + kc + `}`, version: `{}`,
			errs: []string{"version.revision is required: get runs on a version that check emitted"}},
		{name: "in with a source that does not decode", verb: "in", source: `{"kind": "cluster", "mode": "argocd", "bogus": 1}`, version: `{}`,
			errs: []string{`source: unknown key "bogus"`}},
		{name: "out direct", verb: "out", source: `{"kind": "cluster", "timeout": "1m", ` + kc + `}`, params: `{"path": "config"}`,
			check: func(t *testing.T, req any) {
				r := req.(outRequest)
				require.Equal(t, "config", r.Params.Path)
				require.Nil(t, r.Agent)
				require.Equal(t, time.Minute, r.timeout())
			}},
		{name: "out flux reads the revision file once", verb: "out", source: `{"kind": "cluster", "mode": "flux", "helmrelease": "web", ` + kc + `}`,
			params: `{"revision_file": "ref", "timeout": "3m"}`,
			check: func(t *testing.T, req any) {
				r := req.(outRequest)
				require.Nil(t, r.Params)
				require.Equal(t, "3becd003b8704fbc0c7e3f041ff27c51e53ed5f6", r.Agent.Revision)
				require.Equal(t, 3*time.Minute, r.timeout())
				require.Equal(t, helmAgent{}, modeOf(r.Source))
			}},
		{name: "out argocd", verb: "out", source: `{"kind": "cluster", "mode": "argocd", "application": "web", ` + kc + `}`, params: `{"revision": "abc1234", "sync": true}`,
			check: func(t *testing.T, req any) { require.Equal(t, agent{argocd{}}, modeOf(req.(outRequest).Source)) }},
		{name: "out: the source and the agent's params at once", verb: "out", source: `{"kind": "cluster", "mode": "flux", "kustomization": "apps", "token": "t"}`, params: `{"path": "x"}`,
			errs: []string{"source.server is required with source.token", `params: unknown key "path"`}},
		{name: "out: params of a source that does not decode are judged as direct's", verb: "out", source: `{"kind": "cluster", "bogus": 1}`, params: `{}`,
			errs: []string{`source: unknown key "bogus"`, "params.path is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := input(t, tt.source, tt.params)
			if tt.version != "" {
				in.Request.Version = json.RawMessage(tt.version)
			}
			in.Dir = dir
			req, err := parse[tt.verb](in)
			if len(tt.errs) == 0 {
				require.NoError(t, err)
				tt.check(t, req)
				return
			}
			requireConfigErrors(t, err, tt.errs)
		})
	}
}
