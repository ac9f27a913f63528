package manifest

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/pkg/resource"
)

func input(t *testing.T, source, params string) resource.Input {
	t.Helper()
	return resource.Input{
		Request: resource.Request{Source: json.RawMessage(source), Params: json.RawMessage(params)},
		Dir:     t.TempDir(),
		Secrets: &resource.Redactor{},
	}
}

const okSource = `{"kind":"manifest","uri":"https://git.example.com/deploy.git","branch":"main"}`

func TestSourceValidation(t *testing.T) {
	for _, tc := range []struct {
		name, source string
		want         []string // every fragment must appear; nil means valid
	}{
		{"ok", okSource, nil},
		{"all fields", `{"kind":"manifest","uri":"https://h/r.git","branch":"main","paths":["apps/*","overlays/prod"],"ignore_paths":["docs"],
			"ignore_own_commits":true,"value_paths":[{"repository":"image.repository","tag":"image.tag"}],"registry_username":"u","registry_password":"p","timeout":"1m"}`, nil},
		{"missing uri and branch", `{"kind":"manifest"}`, []string{"source.uri is required for kind manifest", "source.branch is required"}},
		{"unknown key", `{"kind":"manifest","uri":"https://h/r.git","branch":"main","path":["x"]}`, []string{`unknown key "path"`, `did you mean "paths"`}},
		{"bad paths", `{"kind":"manifest","uri":"https://h/r.git","branch":"main","paths":["/abs","../up",":(bad)x"],"ignore_paths":[""]}`,
			[]string{"source.paths[0]", "source.paths[1]", "source.paths[2]", "source.ignore_paths[0] is empty"}},
		{"value path", `{"kind":"manifest","uri":"https://h/r.git","branch":"main","value_paths":[{"tag":"a.b"},{"repository":"a","digest":"d"}]}`,
			[]string{"source.value_paths[0].repository is required", "source.value_paths[1].digest needs"}},
		{"registry auth", `{"kind":"manifest","uri":"https://h/r.git","branch":"main","registry_username":"u","docker_config":"{not json"}`,
			[]string{"docker_config and source.registry_username", "source.registry_username and source.registry_password go together", "not a Docker config.json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseSource(input(t, tc.source, ""))
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.True(t, resource.IsConfigError(err))
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestOutParamsValidation(t *testing.T) {
	for _, tc := range []struct {
		name, params string
		want         []string
	}{
		{"tag", `{"images":[{"repository":"acme/web","tag":"1.0"}]}`, nil},
		{"numeric tag", `{"images":[{"repository":"acme/web","tag":1.10}]}`, nil},
		{"promote only", `{"promote":{"from":"overlays/staging","to":"overlays/prod"}}`, nil},
		{"setter", `{"images":[{"setter":"flux-system:web","tag":"1"}]}`, nil},
		{"nothing", `{}`, []string{"nothing to do"}},
		{"every problem at once", `{"images":[{"tag":"1.0"},{"repository":"acme/web","tag":"1","tag_file":"t"},{"repository":"acme/web:1.0","digest":"md5:x"},
			{"repository":"acme/web"},{"repository":"a/b","from":"get","tag":"1"},{"repository":"Bad Name","tag":"-x"}],
			"paths":["../x"],"commit_message":"deploy %image%","promote":{"from":"a"}}`,
			[]string{"params.images[0].repository is required", "params.images[1]: tag and tag_file", "params.images[2].repository must not carry a tag",
				"params.images[2].digest", "params.images[3] needs tag", "params.images[4].from", "params.images[5].repository", "params.images[5].tag",
				"params.paths[0]", "params.commit_message: unknown placeholder %image% (known: %build%, %build_url%, %changes%, %images%)", "params.promote needs from and to"}},
		{"promote same", `{"promote":{"from":"a/","to":"a"}}`, []string{"are the same path"}},
		{"unknown", `{"image":[]}`, []string{`unknown key "image"`, `did you mean "images"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := resource.DecodeParams[OutParams](input(t, okSource, tc.params))
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.True(t, resource.IsConfigError(err))
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestReadTargets(t *testing.T) {
	in := input(t, okSource, "")
	require.NoError(t, os.WriteFile(filepath.Join(in.Dir, "tag"), []byte(" 1.2.3\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(in.Dir, "bad"), []byte("not a tag!"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(in.Dir, "empty"), 0o755))
	got, err := readTargets(in, []ImageParam{{Repository: "acme/web", TagFile: "tag"}})
	require.NoError(t, err)
	require.Equal(t, []Target{{Repository: "acme/web", Tag: "1.2.3"}}, got)

	_, err = readTargets(in, []ImageParam{{Repository: "a/b", TagFile: "bad"}, {Repository: "a/b", DigestFile: "nope"}, {From: "empty"}, {Repository: "a/b", From: "/etc"}})
	require.Error(t, err)
	for _, w := range []string{"params.images[0].tag_file", "params.images[1].digest_file", "params.images[2].from: empty/repository is missing",
		"params.images[2].from: empty has neither", "params.images[3].from"} {
		require.Contains(t, err.Error(), w)
	}
}

func TestPathSet(t *testing.T) {
	s := pathSet{include: []string{"apps", "clusters/*/values.yaml", "overlays/prod/"}, exclude: []string{"apps/*.md", "apps/legacy"}}
	for name, want := range map[string]bool{
		"apps/web.yaml": true, "apps/sub/web.yaml": true, "apps/README.md": false, "apps/legacy/x.yaml": false,
		"clusters/eu/values.yaml": true, "clusters/eu/other.yaml": false, "overlays/prod/kustomization.yaml": true,
		"overlays/production/x.yaml": false, "appsx/a.yaml": false,
	} {
		require.Equal(t, want, s.Match(name), name)
	}
	require.True(t, pathSet{}.Match("anything"))
	require.False(t, pathSet{}.Limited())
}

// mapTree is an in-memory Tree.
type mapTree map[string]string

func (m mapTree) Names() ([]string, error) {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}
func (m mapTree) ReadFile(name string) ([]byte, bool, error) {
	v, ok := m[name]
	return []byte(v), ok, nil
}
func (m mapTree) WriteFile(name string, data []byte) { m[name] = string(data) }

func TestEditorRules(t *testing.T) {
	for _, tc := range []struct {
		name    string
		file    string
		targets []Target
		want    string
	}{
		{"docker hub spellings", "containers:\n- image: nginx:1.0\n- image: index.docker.io/library/nginx:1.0 # hub\n",
			[]Target{{Repository: "docker.io/library/nginx", Tag: "1.1"}}, "containers:\n- image: nginx:1.1\n- image: index.docker.io/library/nginx:1.1 # hub\n"},
		{"port is not a tag", "containers:\n- image: localhost:5000/web\n- image: localhost:5000/web:1\n",
			[]Target{{Repository: "localhost:5000/web", Tag: "2"}}, "containers:\n- image: localhost:5000/web:2\n- image: localhost:5000/web:2\n"},
		{"prefix never matches", "containers:\n- image: acme/web-worker:1\n- image: acme/web:1\n", []Target{{Repository: "acme/web", Tag: "2"}}, "containers:\n- image: acme/web-worker:1\n- image: acme/web:2\n"},
		{"digest kept with a digest", "containers:\n- image: acme/web:1@" + strings.Repeat("a", 0) + "sha256:" + strings.Repeat("a", 64) + "\n",
			[]Target{{Repository: "acme/web", Digest: "sha256:" + strings.Repeat("b", 64)}}, "containers:\n- image: acme/web:1@sha256:" + strings.Repeat("b", 64) + "\n"},
		{"two targets for one reference: the first wins", "containers:\n- image: acme/web:1 # {\"$imagepolicy\": \"ns:web\"}\n",
			[]Target{{Repository: "acme/web", Tag: "2"}, {Setter: "ns:web", Tag: "3"}}, "containers:\n- image: acme/web:2 # {\"$imagepolicy\": \"ns:web\"}\n"},
		{"crlf kept", "containers:\r\n- image: 'acme/web:1'\r\n", []Target{{Repository: "acme/web", Tag: "2"}}, "containers:\r\n- image: 'acme/web:2'\r\n"},
		{"helm tag without digest key", "image:\n  repository: acme/web\n  tag: v1\n", []Target{{Repository: "acme/web", Tag: "v2", Digest: "sha256:" + strings.Repeat("c", 64)}},
			"image:\n  repository: acme/web\n  tag: v2\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tree := mapTree{"f.yaml": tc.file}
			_, err := (&Editor{Tree: tree}).Apply(tc.targets, pathSet{})
			require.NoError(t, err)
			require.Equal(t, tc.want, tree["f.yaml"])
		})
	}
}

func TestEditorBrokenFile(t *testing.T) {
	tree := mapTree{"a.yaml": "x: [1\n", "b.yaml": "containers:\n- image: acme/web:1\n"}
	_, err := (&Editor{Tree: tree}).Apply([]Target{{Repository: "acme/web", Tag: "2"}}, pathSet{})
	require.Error(t, err)
	require.Contains(t, err.Error(), "a.yaml:")
	require.Equal(t, "containers:\n- image: acme/web:1\n", tree["b.yaml"], "nothing written")
	require.False(t, errors.Is(err, os.ErrNotExist))
}

func TestCommitMessage(t *testing.T) {
	env := resource.Env{JobName: "deploy", PipelineName: "app", BuildName: "3", TeamName: "main", ExternalURL: "https://ci"}
	changes := []ImageChange{
		{Repository: "acme/web", Name: "web", Old: "1.0.0", New: "1.1.0", File: "a.yaml"},
		{Repository: "acme/web", Name: "web", Old: "1.0.0", New: "1.1.0", File: "b.yaml"},
		{Repository: "acme/api", Name: "api", Old: "sha256:" + strings.Repeat("a", 64), New: "2@sha256:" + strings.Repeat("b", 64)},
	}
	msg, err := commitMessage(defaultMessage, changes, env, true)
	require.NoError(t, err)
	require.Equal(t, "web: 1.0.0 → 1.1.0, api: sha256:aaaaaaaaaaaa → 2@sha256:bbbbbbbbbbbb [ci skip]\n\n"+
		"Gitops-Resource: manifest\n"+
		"Image: acme/web:1.0.0 -> 1.1.0\n"+
		"Image: acme/api@sha256:"+strings.Repeat("a", 64)+" -> 2@sha256:"+strings.Repeat("b", 64)+"\n"+
		"Concourse-Build: app/deploy #3\n"+
		"Concourse-Build-URL: https://ci/teams/main/pipelines/app/jobs/deploy/builds/3\n", msg)

	msg, err = commitMessage("deploy %images% from %build%\n\n%build_url%", changes, env, false)
	require.NoError(t, err)
	subject, body, _ := strings.Cut(msg, "\n\n")
	require.Equal(t, "deploy web=1.1.0 api=2@sha256:bbbbbbbbbbbb from app/deploy #3", subject)
	require.True(t, strings.HasPrefix(body, "https://ci/teams/main/pipelines/app/jobs/deploy/builds/3\n"), body)
}
