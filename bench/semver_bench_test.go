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
	bare, depth1 := repoSizes(b, srv.RepoPath("app"), url, "version")
	source := map[string]any{"kind": "semver", "uri": url, "branch": "version", "file": "version"}

	// check vs the least the git CLI does to read one file at a branch tip.
	// A check in a fresh temp dir has no cache: the first check of a
	// container.
	b.Run("check", func(b *testing.B) {
		var p pair
		for b.Loop() {
			p.turn(func() usage {
				return run(b, "check", "", map[string]any{"source": source}, true, "TMPDIR="+b.TempDir())
			}, func() {
				dir := b.TempDir()
				git(b, dir, "ls-remote", url, "refs/heads/version")
				git(b, dir, "init", "-q", "--bare")
				git(b, dir, "fetch", "-q", "--depth", "1", url, "version")
				git(b, dir, "cat-file", "-p", "FETCH_HEAD:version")
			})
		}
		p.report(b, bare)
		reportRepo(b, bare, depth1)
	})
	// semver-resource's git driver runs the git CLI in a clone it keeps in
	// the check container's temp dir. The first check of a container vs its
	// cold commands: a blobless clone, then a sparse checkout of the file.
	srv.Git(b, "app", "config", "uploadpack.allowFilter", "true") // or the server ignores --filter
	b.Run("check-cold", func(b *testing.B) {
		var p pair
		for b.Loop() {
			p.turn(func() usage {
				return run(b, "check", "", map[string]any{"source": source}, true, "TMPDIR="+b.TempDir())
			}, func() {
				dir := filepath.Join(b.TempDir(), "semver-git-repo")
				git(b, filepath.Dir(dir), "clone", "-q", "--no-checkout", "--filter=blob:none", "--single-branch", "--branch", "version", url, dir)
				git(b, dir, "sparse-checkout", "set", "--no-cone", "/version")
				git(b, dir, "checkout", "-q", "version")
				readFile(b, filepath.Join(dir, "version"))
			})
		}
		p.report(b, bare)
		reportRepo(b, bare, depth1)
	})
	// Every later check of the container, the branch unchanged, vs its warm
	// commands in the kept clone: fetch, reset --hard, read the file.
	b.Run("check-warm", func(b *testing.B) {
		tmp := b.TempDir()
		run(b, "check", "", map[string]any{"source": source}, true, "TMPDIR="+tmp)
		dir := filepath.Join(b.TempDir(), "semver-git-repo")
		git(b, filepath.Dir(dir), "clone", "-q", "--single-branch", "--branch", "version", url, dir)
		var p pair
		for b.Loop() {
			p.turn(func() usage {
				return run(b, "check", "", map[string]any{"source": source}, true, "TMPDIR="+tmp)
			}, func() {
				git(b, dir, "fetch", "-q", "origin", "version")
				git(b, dir, "reset", "-q", "--hard", "origin/version")
				readFile(b, filepath.Join(dir, "version"))
			})
		}
		p.report(b, bare)
		reportRepo(b, bare, depth1)
	})
	// out (bump, push, verify) vs clone --depth 1, edit, commit, push.
	b.Run("out", func(b *testing.B) {
		req := map[string]any{"source": source, "params": map[string]any{"bump": "patch"}}
		var p pair
		// The floor writes a version of its own; ours bumps whatever is there.
		n := 0
		for b.Loop() {
			n++
			p.turn(func() usage {
				return run(b, "out", b.TempDir(), req, true)
			}, func() {
				dir := filepath.Join(b.TempDir(), "w")
				git(b, filepath.Dir(dir), "clone", "-q", "--depth", "1", "--single-branch", "--branch", "version", url, dir)
				if err := os.WriteFile(filepath.Join(dir, "version"), fmt.Appendf(nil, "2.0.%d\n", n), 0o644); err != nil {
					b.Fatal(err)
				}
				git(b, dir, "commit", "-qam", "bump")
				git(b, dir, "push", "-q", "origin", "HEAD:version")
			})
		}
		p.report(b, bare)
		reportRepo(b, bare, depth1)
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

func readFile(b *testing.B, name string) {
	b.Helper()
	if _, err := os.ReadFile(name); err != nil {
		b.Fatal(err)
	}
}
