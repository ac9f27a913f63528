package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitops-resource/gitops-resource/internal/gittest"
	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
	"github.com/gitops-resource/gitops-resource/internal/testenv/kubetest"
)

var kube kubetest.Suite

func TestMain(m *testing.M) {
	defer rt.Cleanup()
	kube.Main(m, kubetest.Full)
}

func show(t *testing.T, step string, req any, res rt.Result) {
	t.Helper()
	body, _ := json.MarshalIndent(req, "  ", "  ")
	t.Logf("── %s\n  request: %s\n  stderr:\n%s  stdout: %s", step, redactKubeconfig(string(body)), indent(res.Stderr), res.Stdout)
}

func redactKubeconfig(s string) string {
	if i := strings.Index(s, `"kubeconfig": "`); i >= 0 {
		end := strings.Index(s[i+15:], `"`)
		return s[:i+15] + "((kubeconfig))" + s[i+15+end:]
	}
	return s
}

func indent(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		b.WriteString("    " + line)
	}
	return b.String()
}

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: %s:1.0.0 # the tag CI writes
        ports:
        - containerPort: 8080
`

// TestDemo is the push-style release job: bump the version, write the
// image (pinned by digest) into the config repo, apply it to the cluster
// and wait for the rollout.
func TestDemo(t *testing.T) {
	env := kube.Env(t)
	ns := env.Namespace(t)

	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	repo := strings.TrimPrefix(reg.URL, "http://") + "/acme/web"
	img, err := random.Image(256, 1)
	require.NoError(t, err)
	ref, err := name.ParseReference(repo + ":1.5.0-rc.1")
	require.NoError(t, err)
	require.NoError(t, remote.Write(ref, img))
	digest, err := img.Digest()
	require.NoError(t, err)

	srv := gittest.New(t)
	srv.CreateRepo(t, "app")
	srv.Commit(t, "app", "version", map[string]string{"version": "1.4.2"}, "start at 1.4.2")
	srv.CreateRepo(t, "config")
	srv.Commit(t, "config", "main", map[string]string{"apps/web/deployment.yaml": fmt.Sprintf(deployment, repo)}, "web at 1.0.0")
	build := rt.Env("release", "1")

	t.Logf("embedded servers: git %s, registry %s, kube-apiserver %s (KUBECONFIG=%s)", srv.HTTPAddr(), reg.URL, env.Host(), env.KubeconfigPath())

	// 1. put version: bump
	version := map[string]any{"kind": "semver", "uri": srv.HTTPURL("app"), "branch": "version", "file": "version"}
	req := map[string]any{"source": version, "params": map[string]any{"bump": "minor", "pre": "rc"}}
	res := rt.Run(t, "out", t.TempDir(), req, build)
	show(t, "put: version (bump: minor, pre: rc)", req, res)
	var out struct {
		Version map[string]string `json:"version"`
	}
	res.OK(t, &out)
	number := out.Version["number"]
	require.Equal(t, "1.5.0-rc.1", number)

	// 2. put config: write the image, pinned by digest
	config := map[string]any{"kind": "manifest", "uri": srv.HTTPURL("config"), "branch": "main", "paths": []string{"apps/web/"}, "ignore_own_commits": true}
	req = map[string]any{"source": config, "params": map[string]any{"images": []map[string]any{{"repository": repo, "tag": number}}, "resolve_digest": true}}
	res = rt.Run(t, "out", t.TempDir(), req, build)
	show(t, "put: config (images, resolve_digest)", req, res)
	var written struct {
		Version map[string]string `json:"version"`
	}
	res.OK(t, &written)

	// 3. get config at that commit, as the deploy job would
	dir := t.TempDir()
	req = map[string]any{"source": config, "version": written.Version}
	res = rt.Run(t, "in", filepath.Join(dir, "config"), req, build)
	show(t, "get: config", req, res)
	res.OK(t, nil)

	// 4. put cluster: apply, wait for the rollout
	cluster := map[string]any{"kind": "cluster", "kubeconfig": string(env.Kubeconfig()), "namespace": ns, "resources": []string{"deployment/web"}}
	req = map[string]any{"source": cluster, "params": map[string]any{"path": "config/apps/web", "revision_file": "config/.git/ref", "timeout": "2m"}}
	res = rt.Run(t, "out", dir, req, build)
	show(t, "put: cluster (mode direct)", req, res)
	res.OK(t, nil)

	// 5. check cluster: what runs now
	req = map[string]any{"source": cluster}
	res = rt.Run(t, "check", "", req, nil)
	show(t, "check: cluster", req, res)
	res.OK(t, nil)

	d, err := env.Client().AppsV1().Deployments(ns).Get(context.Background(), "web", metav1.GetOptions{})
	require.NoError(t, err)
	want := repo + ":" + number + "@" + digest.String()
	require.Equal(t, want, d.Spec.Template.Spec.Containers[0].Image, "the cluster runs the very image that was tested")
	require.Equal(t, int32(2), d.Status.AvailableReplicas)
	committed, err := os.ReadFile(filepath.Join(dir, "config", "apps", "web", "deployment.yaml"))
	require.NoError(t, err)
	t.Logf("── config/apps/web/deployment.yaml as committed:\n%s", indent(string(committed)))
	t.Logf("── the commit on config/main:\n%s", indent(srv.Git(t, "config", "log", "-1", "--format=%H%n%n%B", "main")))
}
