package concourse

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/ssh"

	"github.com/gitops-resource/gitops-resource/internal/gittest"
	"github.com/gitops-resource/gitops-resource/pkg/artifact"
	"github.com/gitops-resource/gitops-resource/pkg/cluster"
	"github.com/gitops-resource/gitops-resource/pkg/manifest"
	"github.com/gitops-resource/gitops-resource/pkg/resource"
	"github.com/gitops-resource/gitops-resource/pkg/semver"
)

// TestPipelinesRequests feeds every gitops resource of the shipped pipelines
// to its kind, as Concourse would (check with the source; out with the
// source and each put's params; in with each get's params), with a context
// that is already cancelled: a kind validates its whole config before any
// network I/O, so the only acceptable errors are the cancelled network ones.
// A config error (unknown key, missing field, contradiction) fails the test.
//
// ((vars)) are filled from the pipeline's vars.yml and, for secrets, with
// well-formed stand-ins (a real SSH key, a kubeconfig).
func TestPipelinesRequests(t *testing.T) {
	secrets := standIns(t)
	kinds := map[string]resource.Kind{
		"semver":   semver.Kind(),
		"manifest": manifest.Kind(),
		"cluster":  cluster.Kind(),
		"artifact": artifact.Kind(),
	}
	for _, p := range pipelines(t) {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			vars := p.varsOf(t)
			for k, v := range secrets {
				if _, ok := vars[k]; !ok {
					vars[k] = v
				}
			}
			var doc map[string]any
			b, err := os.ReadFile(p.file)
			if err != nil {
				t.Fatal(err)
			}
			if err := yaml.Unmarshal(b, &doc); err != nil {
				t.Fatalf("parse %s: %v", p.file, err)
			}
			doc = interpolate(t, doc, vars).(map[string]any)

			sources := map[string]map[string]any{}
			for _, r := range list(doc["resources"]) {
				r := r.(map[string]any)
				if r["type"] != "gitops" {
					continue
				}
				src, _ := r["source"].(map[string]any)
				name := r["name"].(string)
				sources[name] = src
				try(t, kinds, "check "+name, src, nil, nil)
			}
			for _, job := range list(doc["jobs"]) {
				job := job.(map[string]any)
				walkSteps(job["plan"], func(step map[string]any) {
					var verb, res string
					switch {
					case step["put"] != nil:
						verb, res = "put", step["put"].(string)
					case step["get"] != nil && step["params"] != nil:
						verb, res = "get", step["get"].(string)
					default:
						return
					}
					if r, ok := step["resource"].(string); ok {
						res = r
					}
					src, ok := sources[res]
					if !ok {
						return
					}
					params, _ := step["params"].(map[string]any)
					where := fmt.Sprintf("job %s: %s %s", job["name"], verb, res)
					try(t, kinds, where, src, params, verbOf(verb))
				})
			}
		})
	}
}

type verb int

const (
	verbIn verb = iota
	verbOut
)

func verbOf(s string) *verb {
	v := verbIn
	if s == "put" {
		v = verbOut
	}
	return &v
}

// try runs one request and fails the test on a config error.
func try(t *testing.T, kinds map[string]resource.Kind, where string, src, params map[string]any, v *verb) {
	t.Helper()
	kind, ok := kinds[fmt.Sprint(src["kind"])]
	if !ok {
		t.Errorf("%s: source.kind %v is not a kind", where, src["kind"])
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := resource.Request{Source: raw(t, src)}
	if params != nil {
		req.Params = raw(t, params)
	}
	in := resource.Input{Request: req, Log: io.Discard, Secrets: &resource.Redactor{}, Env: resource.EnvFrom(func(string) string { return "" })}
	var err error
	switch {
	case v == nil:
		_, err = kind.Check(ctx, in)
	case *v == verbIn:
		in.Dir = t.TempDir()
		in.Request.Version = raw(t, versionFor(src))
		_, err = kind.In(ctx, in)
	default:
		in.Dir = buildDir(t, params)
		_, err = kind.Out(ctx, in)
	}
	if resource.IsConfigError(err) {
		t.Errorf("%s: the kind rejects the pipeline's config: %v", where, err)
	}
}

func raw(t *testing.T, v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func versionFor(src map[string]any) map[string]string {
	switch src["kind"] {
	case "semver":
		return map[string]string{"number": "1.0.0"}
	case "manifest":
		return map[string]string{"ref": strings.Repeat("a", 40)}
	case "artifact":
		return map[string]string{"tag": "1.0.0", "digest": "sha256:" + strings.Repeat("b", 64)}
	}
	return map[string]string{"revision": strings.Repeat("a", 40)}
}

// buildDir makes the inputs a put's params name: files for *_file params,
// a registry-image get dir for `from`, a manifests dir for `path`.
func buildDir(t *testing.T, params map[string]any) string {
	dir := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	digest := "sha256:" + strings.Repeat("b", 64)
	var visit func(v any)
	visit = func(v any) {
		switch v := v.(type) {
		case []any:
			for _, e := range v {
				visit(e)
			}
		case map[string]any:
			for k, e := range v {
				s, _ := e.(string)
				switch {
				case s == "":
					visit(e)
				case k == "digest_file":
					write(s, digest)
				case k == "ref_file" || k == "revision_file":
					write(s, strings.Repeat("a", 40))
				case strings.HasSuffix(k, "file"):
					write(s, "1.0.0")
				case k == "from" && !strings.Contains(s, "/overlays") && !strings.HasPrefix(s, "overlays"):
					write(filepath.Join(s, "repository"), "registry.example.com/acme/web")
					write(filepath.Join(s, "tag"), "1.0.0")
					write(filepath.Join(s, "digest"), digest)
				case k == "path":
					write(filepath.Join(s, "deployment.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
				}
			}
		}
	}
	visit(params)
	return dir
}

// walkSteps calls f on every step of a plan, nested ones included.
func walkSteps(v any, f func(map[string]any)) {
	switch v := v.(type) {
	case []any:
		for _, s := range v {
			walkSteps(s, f)
		}
	case map[string]any:
		f(v)
		for _, k := range []string{"do", "in_parallel", "aggregate", "try", "on_success", "on_failure", "on_abort", "on_error", "ensure", "steps"} {
			if sub, ok := v[k]; ok {
				walkSteps(sub, f)
			}
		}
	}
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

var varRef = regexp.MustCompile(`\(\(([^)]+)\)\)`)

// interpolate replaces ((name)) as fly does: a whole-value reference takes
// the var's value (any type), one inside a string is spliced in as text.
// Local vars ((.:name)) stay as they are: they are not gitops params here.
func interpolate(t *testing.T, v any, vars map[string]any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = interpolate(t, e, vars)
		}
		return v
	case []any:
		for i, e := range v {
			v[i] = interpolate(t, e, vars)
		}
		return v
	case string:
		if m := varRef.FindStringSubmatch(v); m != nil && m[0] == v && !strings.HasPrefix(m[1], ".:") {
			val, ok := vars[m[1]]
			if !ok {
				t.Errorf("((%s)) is in neither vars.yml nor the test's stand-ins for secrets", m[1])
			}
			return val
		}
		return varRef.ReplaceAllStringFunc(v, func(ref string) string {
			name := strings.Trim(ref, "()")
			if strings.HasPrefix(name, ".:") {
				return ref
			}
			val, ok := vars[name]
			if !ok {
				t.Errorf("((%s)) is in neither vars.yml nor the test's stand-ins for secrets", name)
			}
			return fmt.Sprint(val)
		})
	}
	return v
}

// standIns are well-formed values for the secrets the pipelines leave to the
// credential manager.
func standIns(t *testing.T) map[string]any {
	key := gittest.NewKey(t)
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: stand-in}
contexts:
- name: c
  context: {cluster: c, user: u}
current-context: c
`
	return map[string]any{
		"git-private-key":    string(key),
		"git-known-hosts":    "github.com " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))),
		"gpg-signing-key":    gittest.NewGPGKey(t, gittest.GPGOptions{}).Private,
		"registry-username":  "ci",
		"registry-password":  "stand-in",
		"gitea-token":        "stand-in-token",
		"kubeconfig":         kubeconfig,
		"dev-kubeconfig":     kubeconfig,
		"staging-kubeconfig": kubeconfig,
		"prod-kubeconfig":    kubeconfig,
	}
}
