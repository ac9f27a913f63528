// Package bench measures the binaries against the git CLI doing the same
// work on the same inputs in the same run: `make bench`.
package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitops-resource/gitops-resource/internal/gittest"
	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
)

func TestMain(m *testing.M) { rt.Main(m) }

// BenchmarkSemver runs each semver verb and its git CLI floor on one repo
// whose "version" branch has 10,000 commits.
func BenchmarkSemver(b *testing.B) {
	srv := gittest.New(b)
	srv.CreateRepo(b, "app")
	srv.SeedHistory(b, "app", "version", 10000, func(i int) map[string]string {
		return map[string]string{"version": fmt.Sprintf("1.0.%d", i), "CHANGELOG": strings.Repeat("line\n", i%50)}
	})
	rt.Binaries(b)
	url := srv.HTTPURL("app")
	source := map[string]any{"kind": "semver", "uri": url, "branch": "version", "file": "version"}

	b.Run("check", func(b *testing.B) {
		var peak int64
		defer func() { reportPeak(b, peak) }()
		for b.Loop() {
			run(b, &peak, "check", "", map[string]any{"source": source})
		}
	})
	// The least the git CLI does to read one file at a branch tip.
	b.Run("git-floor-check", func(b *testing.B) {
		for b.Loop() {
			dir := b.TempDir()
			git(b, dir, "ls-remote", url, "refs/heads/version")
			git(b, dir, "init", "-q", "--bare")
			git(b, dir, "fetch", "-q", "--depth", "1", url, "version")
			git(b, dir, "cat-file", "-p", "FETCH_HEAD:version")
		}
	})
	b.Run("out", func(b *testing.B) {
		req := map[string]any{"source": source, "params": map[string]any{"bump": "patch"}}
		var peak int64
		defer func() { reportPeak(b, peak) }()
		for b.Loop() {
			run(b, &peak, "out", b.TempDir(), req)
		}
	})
	// clone --depth 1, edit, commit, push.
	b.Run("git-floor-out", func(b *testing.B) {
		for b.Loop() {
			dir := filepath.Join(b.TempDir(), "w")
			git(b, filepath.Dir(dir), "clone", "-q", "--depth", "1", "--single-branch", "--branch", "version", url, dir)
			data, err := os.ReadFile(filepath.Join(dir, "version"))
			if err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "version"), append(data, '.'), 0o644); err != nil {
				b.Fatal(err)
			}
			git(b, dir, "commit", "-qam", "bump")
			git(b, dir, "push", "-q", "origin", "HEAD:version")
		}
	})
}

func git(b *testing.B, dir string, args ...string) string {
	b.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=b", "GIT_AUTHOR_EMAIL=b@b", "GIT_COMMITTER_NAME=b", "GIT_COMMITTER_EMAIL=b@b")
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}
