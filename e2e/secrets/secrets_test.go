package secrets

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/gitops-resource/gitops-resource/internal/gittest"
	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
	"github.com/gitops-resource/gitops-resource/internal/testenv/kubetest"
)

var kube kubetest.Suite

func TestMain(m *testing.M) {
	defer rt.Cleanup()
	kube.Main(m, kubetest.APIOnly)
}

const (
	password   = "hunter2-git-password"
	passphrase = "correct-horse-passphrase"
	regSecret  = "registry-s3cret-token"
	token      = "eyJhbGciOiJSUzI1NiJ9.not-a-real-token-value"
	forgeToken = "gta_forge-token-not-for-logs"
	// oddPassword is cloud-generated: unescaped in a URL, it keeps the URL
	// from parsing.
	oddPassword = "Vq8/Lm#3 xB@tP9%zz"
)

type scenario struct {
	name    string
	source  map[string]any
	params  map[string]any
	version map[string]string
	secrets []string
	// onlyOut: the failing credential is used by out alone.
	onlyOut bool
}

// basicAuth guards h with a username and password.
func basicAuth(h http.Handler, user, pass string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="registry"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func TestNoCredentialLeaksFromAnyVerb(t *testing.T) {
	git := gittest.New(t, gittest.WithBasicAuth("ci", "the-right-password"))
	git.CreateRepo(t, "app")
	sha := git.Commit(t, "app", "main", map[string]string{"version": "1.0.0", "deploy.yaml": "spec:\n  containers:\n  - image: 127.0.0.1:1/acme/web:1.0\n"}, "seed")
	sshGit := gittest.New(t)
	sshGit.CreateRepo(t, "app")
	key := string(sshGit.ClientKeyWithPassphrase("the-right-passphrase"))
	otherKey := string(gittest.NewKey(t))

	reg := httptest.NewServer(basicAuth(registry.New(registry.Logger(log.New(io.Discard, "", 0))), "ci", "the-right-registry-password"))
	t.Cleanup(reg.Close)
	regRepo := strings.TrimPrefix(reg.URL, "http://") + "/acme/web"

	// forgeSrv answers every API call 401, as a forge does to a bad token.
	forgeSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"message":"token is required"}`, http.StatusUnauthorized)
	}))
	t.Cleanup(forgeSrv.Close)
	forge := map[string]any{"type": "gitea", "url": forgeSrv.URL, "token": forgeToken}
	git.CreateRepo(t, "acme/app") // a forge's repository is owner/name
	forgeSHA := git.Commit(t, "acme/app", "main", map[string]string{"deploy.yaml": "spec:\n  containers:\n  - image: acme/web:1.0\n"}, "seed")
	artifactVersion := map[string]string{"tag": "1.0", "digest": "sha256:" + strings.Repeat("0", 64)}

	env := kube.Env(t)
	ns := env.Namespace(t)
	denied := env.ServiceAccount(t, ns) // no permissions at all
	host := env.Host()
	brokenKubeconfig := strings.Replace(string(env.Kubeconfig()), "clusters:", "clusters: [unclosed", 1) + "\n  token: " + token + "\n"

	httpSrc := func(kind string, extra map[string]any) map[string]any {
		s := map[string]any{"kind": kind, "uri": git.HTTPURL("app"), "branch": "main", "username": "ci", "password": password}
		for k, v := range extra {
			s[k] = v
		}
		return s
	}
	semverParams := map[string]any{"bump": "patch"}
	manifestParams := map[string]any{"images": []map[string]any{{"repository": "acme/web", "tag": "2.0"}}}
	scenarios := []scenario{
		{name: "semver/wrong password", source: httpSrc("semver", map[string]any{"file": "version"}), params: semverParams, version: map[string]string{"number": "1.0.0"}, secrets: []string{password}},
		{name: "semver/password in the URL", source: map[string]any{"kind": "semver", "uri": "http://ci:" + password + "@" + git.HTTPAddr() + "/app.git", "branch": "main", "file": "version"}, params: semverParams, version: map[string]string{"number": "1.0.0"}, secrets: []string{password}},
		{name: "semver/password that keeps the URL from parsing", source: map[string]any{"kind": "semver", "uri": "http://ci:" + oddPassword + "@" + git.HTTPAddr() + "/app.git", "branch": "main", "file": "version"}, params: semverParams, version: map[string]string{"number": "1.0.0"}, secrets: []string{oddPassword, "Vq8/Lm#3"}},
		{name: "semver/wrong passphrase", source: map[string]any{"kind": "semver", "uri": sshGit.SSHURL("app"), "branch": "main", "file": "version", "private_key": key, "private_key_passphrase": passphrase, "known_hosts": sshGit.KnownHosts()}, params: semverParams, version: map[string]string{"number": "1.0.0"}, secrets: []string{key, passphrase}},
		{name: "semver/unauthorized key", source: map[string]any{"kind": "semver", "uri": sshGit.SSHURL("app"), "branch": "main", "file": "version", "private_key": otherKey, "known_hosts": sshGit.KnownHosts()}, params: semverParams, version: map[string]string{"number": "1.0.0"}, secrets: []string{otherKey}},
		{name: "semver/unknown host key", source: map[string]any{"kind": "semver", "uri": sshGit.SSHURL("app"), "branch": "main", "file": "version", "private_key": otherKey, "known_hosts": sshGit.KnownHostsMismatch()}, params: semverParams, version: map[string]string{"number": "1.0.0"}, secrets: []string{otherKey}},
		{name: "manifest/wrong password", source: httpSrc("manifest", nil), params: manifestParams, version: map[string]string{"ref": sha}, secrets: []string{password}},
		{name: "manifest/password that keeps the URL from parsing", source: map[string]any{"kind": "manifest", "uri": "http://ci:" + oddPassword + "@" + git.HTTPAddr() + "/app.git", "branch": "main"}, params: manifestParams, version: map[string]string{"ref": sha}, secrets: []string{oddPassword, "Vq8/Lm#3"}},
		{name: "manifest/registry 401", source: httpSrc("manifest", map[string]any{"password": "the-right-password", "registry_username": "ci", "registry_password": regSecret}),
			params: map[string]any{"images": []map[string]any{{"repository": regRepo, "tag": "2.0"}}, "resolve_digest": true}, version: map[string]string{"ref": sha}, secrets: []string{regSecret}, onlyOut: true},
		{name: "manifest/forge 401", source: httpSrc("manifest", map[string]any{"uri": git.HTTPURL("acme/app"), "password": "the-right-password", "forge": forge}),
			params: map[string]any{"images": manifestParams["images"], "pull_request": map[string]any{}}, version: map[string]string{"ref": forgeSHA}, secrets: []string{forgeToken}, onlyOut: true},
		{name: "manifest/forge token as the git password", source: map[string]any{"kind": "manifest", "uri": git.HTTPURL("acme/app"), "branch": "main", "forge": forge},
			params: map[string]any{"images": manifestParams["images"], "pull_request": map[string]any{}}, version: map[string]string{"ref": forgeSHA}, secrets: []string{forgeToken}},
		{name: "artifact/registry 401", source: map[string]any{"kind": "artifact", "repository": strings.TrimPrefix(reg.URL, "http://") + "/acme/manifests", "tag": "1.0", "username": "ci", "password": regSecret},
			params: map[string]any{"path": ".", "tag": "1.0", "source": "https://git.example.com/acme/config.git", "revision": "main@sha1:" + sha}, version: artifactVersion, secrets: []string{regSecret}},
		{name: "cluster/wrong token", source: map[string]any{"kind": "cluster", "server": host, "token": token, "insecure_skip_tls_verify": true, "namespace": ns, "resources": []string{"deployment/web"}},
			params: map[string]any{"path": "m.yaml"}, version: map[string]string{"revision": "x"}, secrets: []string{token}},
		{name: "cluster/kubeconfig that does not parse", source: map[string]any{"kind": "cluster", "kubeconfig": brokenKubeconfig, "resources": []string{"deployment/web"}},
			params: map[string]any{"path": "m.yaml"}, version: map[string]string{"revision": "x"}, secrets: []string{token, brokenKubeconfig}},
		{name: "cluster/RBAC denial", source: map[string]any{"kind": "cluster", "kubeconfig": string(denied.Kubeconfig), "namespace": ns, "resources": []string{"deployment/web"}},
			params: map[string]any{"path": "m.yaml"}, version: map[string]string{"revision": "x"}, secrets: []string{denied.Token}},
		{name: "cluster/flux RBAC denial", source: map[string]any{"kind": "cluster", "mode": "flux", "kustomization": "apps", "kubeconfig": string(denied.Kubeconfig), "namespace": ns},
			params: map[string]any{"revision": sha}, version: map[string]string{"revision": sha}, secrets: []string{denied.Token}},
		{name: "cluster/argocd RBAC denial", source: map[string]any{"kind": "cluster", "mode": "argocd", "application": "web", "kubeconfig": string(denied.Kubeconfig), "namespace": ns},
			params: map[string]any{"revision": sha, "sync": true}, version: map[string]string{"revision": sha}, secrets: []string{denied.Token}},
	}
	runs := 0
	for _, sc := range scenarios {
		for _, verb := range []string{"check", "in", "out"} {
			t.Run(sc.name+"/"+verb, func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				if err := os.WriteFile(filepath.Join(dir, "m.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: m}\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				req := map[string]any{"source": sc.source}
				switch verb {
				case "in":
					req["version"] = sc.version
				case "out":
					req["params"] = sc.params
				}
				res := rt.Run(t, verb, dir, req, rt.Env("leak", "1"))
				// in of semver and manifest may succeed without the failing
				// credential (semver's get needs no network; manifest's get
				// resolves no digest); every other run must fail.
				if res.Code == 0 && verb != "in" && (verb == "out" || !sc.onlyOut) {
					t.Fatalf("expected a failure\nstdout: %s\nstderr: %s", res.Stdout, res.Stderr)
				}
				res.NoSecrets(t, sc.secrets...)
				assertDirClean(t, dir, sc.secrets)
			})
			runs++
		}
	}
	t.Logf("%d runs: %d ways credentials fail × check, in, out", runs, len(scenarios))
}

// assertDirClean fails if any file the verb wrote holds a secret.
func assertDirClean(t *testing.T, dir string, secrets []string) {
	t.Helper()
	_ = filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return nil
		}
		data, _ := os.ReadFile(path)
		for _, s := range secrets {
			for _, line := range strings.Split(s, "\n") {
				if line = strings.TrimSpace(line); len(line) >= 20 && !strings.HasPrefix(line, "-----") && strings.Contains(string(data), line) {
					t.Errorf("%s holds a secret", path)
				}
			}
		}
		return nil
	})
}
