package bench

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitops-resource/gitops-resource/internal/gittest"
	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
)

// configFile is file i of a 2,000-file config repo: deployments (40 of
// them use the image being shipped, see shipsWeb), kustomizations and Helm
// values.
func configFile(i int) (string, string) {
	app := fmt.Sprintf("app%04d", i)
	switch i % 4 {
	case 1:
		return "apps/" + app + "/kustomization.yaml", fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- deployment.yaml\nimages:\n- name: ghcr.io/acme/%s\n  newTag: 1.0.%d\n", app, i)
	case 2:
		return "apps/" + app + "/values.yaml", fmt.Sprintf("replicaCount: 2\nimage:\n  repository: ghcr.io/acme/%s\n  tag: \"1.0.%d\"\nservice:\n  port: 80 # http\n", app, i)
	}
	image := "ghcr.io/acme/" + app
	if shipsWeb(i) {
		image = "ghcr.io/acme/web"
	}
	return "apps/" + app + "/deployment.yaml", fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %s
  labels: {app: %s}
spec:
  replicas: 2
  selector:
    matchLabels: {app: %s}
  template:
    metadata:
      labels: {app: %s}
    spec:
      containers:
      - name: main
        image: %s:1.0.0 # {"$imagepolicy": "flux-system:%s"}
        ports:
        - containerPort: 8080
        resources:
          limits: {cpu: 500m, memory: 256Mi}
`, app, app, app, app, image, app)
}

// shipsWeb tells whether file i is one of the 40 deployments that use
// ghcr.io/acme/web: files 0 and 3 of every hundred (both deployments, as
// i%4 is 0 or 3 for them).
func shipsWeb(i int) bool { return i%100 == 0 || i%100 == 3 }

// BenchmarkManifest runs manifest in and out and their git CLI floors on a
// config repo of 2,000 YAML files and 10,000 commits.
func BenchmarkManifest(b *testing.B) {
	srv := manifestRepo(b)
	rt.Binaries(b)
	url := srv.HTTPURL("config")
	bare, depth1 := repoSizes(b, srv.RepoPath("config"), url, "main")
	source := map[string]any{"kind": "manifest", "uri": url, "branch": "main"}
	tip := srv.Tip(b, "config", "main")

	// in (tree, .git/ref, images.json of every reference) vs clone --depth 1.
	b.Run("in", func(b *testing.B) {
		var p pair
		for b.Loop() {
			p.turn(func() usage {
				return run(b, "in", b.TempDir(), map[string]any{"source": source, "version": map[string]string{"ref": tip}}, true)
			}, func() {
				dir := b.TempDir()
				git(b, dir, "clone", "-q", "--depth", "1", "--single-branch", "--branch", "main", url, filepath.Join(dir, "w"))
			})
		}
		p.report(b, bare)
		reportRepo(b, bare, depth1)
	})
	// out (one image in 40 files, commit, push, verify) vs clone --depth 1,
	// sed the tag in the 40 files, commit, push.
	n := 0
	b.Run("out", func(b *testing.B) {
		var p pair
		for b.Loop() {
			n++
			p.turn(func() usage {
				req := map[string]any{"source": source, "params": map[string]any{"images": []map[string]any{{"repository": "ghcr.io/acme/web", "tag": fmt.Sprintf("2.0.%d", n)}}}}
				return run(b, "out", b.TempDir(), req, true)
			}, func() {
				dir := filepath.Join(b.TempDir(), "w")
				git(b, filepath.Dir(dir), "clone", "-q", "--depth", "1", "--single-branch", "--branch", "main", url, dir)
				files := strings.Fields(git(b, dir, "grep", "-l", "ghcr.io/acme/web:"))
				if len(files) != 40 {
					b.Fatalf("git grep: %d files use the image, want 40", len(files))
				}
				args := append([]string{"-i", "-E", fmt.Sprintf(`s#(ghcr\.io/acme/web):[^ ]+#\1:3.0.%d#`, n)}, files...)
				cmd := exec.Command("sed", args...)
				cmd.Dir = dir
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("sed: %v\n%s", err, out)
				}
				git(b, dir, "commit", "-qam", "bump web")
				git(b, dir, "push", "-q", "origin", "HEAD:main")
			})
		}
		p.report(b, bare)
		reportRepo(b, bare, depth1)
	})
}

// manifestRepo serves "config": 2,000 YAML files (configFile) and 10,000
// commits on main.
func manifestRepo(b *testing.B) *gittest.Server {
	srv := gittest.New(b)
	srv.CreateRepo(b, "config")
	srv.SeedHistory(b, "config", "main", 10000, func(i int) map[string]string {
		if i == 0 {
			files := map[string]string{}
			for f := range 2000 {
				name, content := configFile(f)
				files[name] = content
			}
			return files
		}
		name, content := configFile((i * 7) % 2000)
		if shipsWeb((i * 7) % 2000) {
			return map[string]string{"CHANGELOG": fmt.Sprint(i)}
		}
		return map[string]string{name: strings.Replace(content, "replicas: 2", fmt.Sprintf("replicas: %d", i%5+1), 1)}
	})
	return srv
}
