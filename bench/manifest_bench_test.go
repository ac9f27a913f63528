package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
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

// BenchmarkManifestCheck runs manifest check where the answer lies deep in
// the history, next to what concourse/git-resource's check runs for the
// same question (assets/check: a bare clone with its --filter flag into a
// new dir, as on a fresh worker, then its rev-list pipeline), on the config
// repo of manifestRepo with 2,001 commits on top: one that touches
// apps/app0001/, then 2,000 that each rewrite another app's deployment.
func BenchmarkManifestCheck(b *testing.B) {
	srv := manifestRepo(b)
	name, content := configFile(1)
	srv.Commit(b, "config", "main", map[string]string{name: content + "# quiet from here\n"}, "touch app0001")
	srv.SeedHistory(b, "config", "main", 2000, func(i int) map[string]string {
		name, content := configFile((i * 4) % 2000) // a deployment, never app0001
		return map[string]string{name: strings.Replace(content, "replicas: 2", fmt.Sprintf("replicas: %d", 10+i), 1)}
	})
	rt.Binaries(b)
	url := srv.HTTPURL("config")
	bare, depth1 := repoSizes(b, srv.RepoPath("config"), url, "main")
	source := map[string]any{"kind": "manifest", "uri": url, "branch": "main"}
	log := strings.Fields(srv.Git(b, "config", "rev-list", "--first-parent", "-n", "501", "main"))
	back500 := log[500]
	quiet := srv.Git(b, "config", "rev-list", "-n", "1", "main", "--", "apps/app0001")

	// A version 500 commits back, no paths: that commit and the 500 after it.
	b.Run("version-500-back", func(b *testing.B) {
		var p pair
		for b.Loop() {
			p.turn(func() usage {
				return runCheck(b, map[string]any{"source": source, "version": map[string]string{"ref": back500}}, 501, back500)
			}, func() {
				gitResourceCheck(b, url, back500, nil, 501)
			})
		}
		p.report(b, bare)
		reportRepo(b, bare, depth1)
	})
	// paths quiet for the last 2,000 commits, no version: the commit 2,000 back.
	b.Run("paths-quiet-2000", func(b *testing.B) {
		src := map[string]any{"kind": "manifest", "uri": url, "branch": "main", "paths": []string{"apps/app0001/"}}
		var p pair
		for b.Loop() {
			p.turn(func() usage {
				return runCheck(b, map[string]any{"source": src}, 1, quiet)
			}, func() {
				gitResourceCheck(b, url, "", []string{"apps/app0001/"}, 1)
			})
		}
		p.report(b, bare)
		reportRepo(b, bare, depth1)
	})
}

// runCheck runs check and fails unless it reports want versions, the first
// being first.
func runCheck(b *testing.B, req map[string]any, want int, first string) usage {
	b.Helper()
	u, out := runOut(b, "check", "", req, true)
	var vs []struct{ Ref string }
	if err := json.Unmarshal(out, &vs); err != nil {
		b.Fatalf("check: %v: %s", err, out)
	}
	if len(vs) != want || vs[0].Ref != first {
		b.Fatalf("check: %d versions (%+v), want %d from %.12s", len(vs), vs, want, first)
	}
	return u
}

// gitResourceCheck runs what git-resource's check runs on a fresh worker
// (assets/check, concourse/git-resource): a bare single-branch clone,
// --filter=tree:0 without paths and --filter=blob:none with them (a server
// that does not allow filters sends everything), then rev-list along the
// first parents, without [ci skip] commits, the version's parent excluded.
// It fails unless it lists want commits.
func gitResourceCheck(b *testing.B, url, ref string, paths []string, want int) {
	b.Helper()
	dest := filepath.Join(b.TempDir(), "git-resource-repo-cache")
	filter := "--filter=tree:0"
	if len(paths) > 0 {
		filter = "--filter=blob:none"
	}
	git(b, filepath.Dir(dest), "clone", "--bare", filter, "--single-branch", "-q", url, "--branch", "main", dest, "--no-tags")
	git(b, dest, "remote", "set-branches", "--add", "origin", "main")
	logRange := ""
	if ref != "" {
		git(b, dest, "cat-file", "-e", ref)
		git(b, dest, "rev-list", "--max-parents=0", "HEAD")
		logRange = ref + "~1..HEAD"
	}
	list := "git rev-list --all --first-parent " + logRange
	if len(paths) > 0 {
		list += " -- " + strings.Join(paths, " ")
	}
	list += ` | git rev-list --stdin --date-order --grep="\[ci\sskip\]" --grep="\[skip\sci\]" --invert-grep --first-parent --no-walk=unsorted`
	if ref == "" {
		list += " | git rev-list --stdin --date-order --no-walk=unsorted -1 --reverse"
	} else {
		list += " | git rev-list --stdin --date-order --first-parent --no-walk=unsorted --reverse"
	}
	if got := len(strings.Fields(sh(b, dest, list))); got != want {
		b.Fatalf("git-resource's rev-list: %d commits, want %d", got, want)
	}
}

// sh runs a shell pipeline in dir, as git-resource's scripts do, and
// returns its stdout.
func sh(b *testing.B, dir, script string) string {
	b.Helper()
	cmd := exec.Command("bash", "-o", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("%s: %v\n%s", script, err, stderr.String())
	}
	return string(out)
}
