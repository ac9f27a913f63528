package manifest_test

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/internal/gittest"
	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
	"github.com/gitops-resource/gitops-resource/pkg/kube"
)

// gitIn runs the real git CLI in dir, as a task after the get would, with
// no user or system configuration, and returns its trimmed stdout. It fails
// the test when git fails.
func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := gitCmd(t, dir, args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("git %s in the get dir: %v: %s", strings.Join(args, " "), err, stderr)
	}
	return strings.TrimSpace(string(out))
}

func gitCmd(t *testing.T, dir string, args ...string) *exec.Cmd {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_CEILING_DIRECTORIES=" + filepath.Dir(dir)}
	return cmd
}

func deployment(tag string) string {
	return "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: acme/web:" + tag + "\n"
}

// countUploadPacks makes a server that counts the pack requests
// (POST .../git-upload-pack) it gets.
func countUploadPacks(t *testing.T, opts ...gittest.Option) (*gittest.Server, *atomic.Int64) {
	var packs atomic.Int64
	srv := gittest.New(t, append(opts, gittest.WithHTTPFault(func(r *http.Request) gittest.Fault {
		if r.Method == http.MethodPost && gittest.Service(r) == "git-upload-pack" {
			packs.Add(1)
		}
		return gittest.Fault{}
	}))...)
	return srv, &packs
}

// TestManifestInNonTipVersionOnStockServer: on a server with git's default
// upload-pack settings (no fetching by SHA), a get of a version that is not
// the tip of the branch, near it or a hundred commits back, over HTTP and
// SSH, writes the tree at that version and a repository whose HEAD is it.
func TestManifestInNonTipVersionOnStockServer(t *testing.T) {
	t.Parallel()
	srv := gittest.New(t)
	srv.CreateRepo(t, "deploy")
	far := srv.Commit(t, "deploy", "main", map[string]string{"apps/web.yaml": deployment("1.0")}, "far")
	srv.SeedHistory(t, "deploy", "main", 100, func(i int) map[string]string {
		return map[string]string{"docs/notes.md": strings.Repeat("x", i)}
	})
	near := srv.Commit(t, "deploy", "main", map[string]string{"apps/web.yaml": deployment("1.1")}, "near")
	srv.Commit(t, "deploy", "main", map[string]string{"apps/web.yaml": deployment("1.2")}, "tip")

	transports := map[string]map[string]any{
		"http": {"uri": srv.HTTPURL("deploy")},
		"ssh":  {"uri": srv.SSHURL("deploy"), "private_key": string(srv.ClientKey()), "known_hosts": srv.KnownHosts()},
	}
	for name, transport := range transports {
		for _, v := range []struct{ name, ref, tag string }{{"near", near, "1.1"}, {"far", far, "1.0"}} {
			t.Run(name+"/"+v.name, func(t *testing.T) {
				t.Parallel()
				src := map[string]any{"kind": "manifest", "branch": "main"}
				for k, val := range transport {
					src[k] = val
				}
				dir := t.TempDir()
				res := rt.Run(t, "in", dir, map[string]any{"source": src, "version": map[string]string{"ref": v.ref}}, nil)
				var out rt.Response
				res.OK(t, &out)
				require.Equal(t, v.ref, out.Version["ref"])
				require.NotContains(t, res.Stderr, "retrying")
				data, err := os.ReadFile(filepath.Join(dir, "apps", "web.yaml"))
				require.NoError(t, err)
				require.Equal(t, deployment(v.tag), string(data), "the tree at the version, not the tip")
				require.Equal(t, v.ref, gitIn(t, dir, "log", "-1", "--format=%H"))
			})
		}
	}
}

// TestManifestInCommitNotOnTheBranchFailsOnce: a version that is not on
// the branch (here: an older commit of another branch) fails the get once,
// with no retries, saying so, and writes nothing.
func TestManifestInCommitNotOnTheBranchFailsOnce(t *testing.T) {
	t.Parallel()
	srv, packs := countUploadPacks(t)
	srv.CreateRepo(t, "deploy")
	srv.Commit(t, "deploy", "main", map[string]string{"apps/web.yaml": deployment("1.0")}, "main")
	elsewhere := srv.Commit(t, "deploy", "feature", map[string]string{"apps/web.yaml": deployment("9.0")}, "feature work")
	srv.Commit(t, "deploy", "feature", map[string]string{"apps/web.yaml": deployment("9.1")}, "more feature work")

	dir := t.TempDir()
	src := map[string]any{"kind": "manifest", "uri": srv.HTTPURL("deploy"), "branch": "main"}
	res := rt.Run(t, "in", dir, map[string]any{"source": src, "version": map[string]string{"ref": elsewhere}}, nil)
	res.Fails(t, elsewhere, "is not on branch main of "+srv.HTTPURL("deploy"))
	require.NotContains(t, res.Stderr, "retrying")
	require.NotContains(t, res.Stderr, "attempt")
	require.LessOrEqual(t, packs.Load(), int64(3), "the tip, then the history once it is known to be whole")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "nothing written")
}

// TestManifestInFetchesByShaWhereTheServerAllowsIt: a server that allows
// fetching reachable commits by SHA (as GitHub and GitLab do) serves an
// older version (70 commits back, past the first deepening) in one more
// request, without deepening; and a commit no ref reaches fails at once.
func TestManifestInFetchesByShaWhereTheServerAllowsIt(t *testing.T) {
	t.Parallel()
	srv, packs := countUploadPacks(t, gittest.WithReachableSHA1InWant())
	srv.CreateRepo(t, "deploy")
	old := srv.Commit(t, "deploy", "main", map[string]string{"apps/web.yaml": deployment("1.0")}, "old")
	// 70 commits on top, each dated after the one before (SeedHistory's
	// would be older than old: git's reachability check trusts dates).
	for i := range 70 {
		srv.Commit(t, "deploy", "main", map[string]string{"docs/notes.md": strings.Repeat("x", i)}, "note")
	}
	dir := t.TempDir()
	src := map[string]any{"kind": "manifest", "uri": srv.HTTPURL("deploy"), "branch": "main"}
	rt.Run(t, "in", dir, map[string]any{"source": src, "version": map[string]string{"ref": old}}, nil).OK(t, nil)
	require.Equal(t, int64(2), packs.Load(), "the tip, then the version by its SHA")
	require.Equal(t, old, gitIn(t, dir, "rev-parse", "HEAD"))
	require.Empty(t, gitIn(t, dir, "status", "--porcelain"))

	// A commit on a branch deleted since: no ref reaches it.
	gone := srv.Commit(t, "deploy", "gone", map[string]string{"apps/web.yaml": deployment("0.1")}, "gone")
	srv.Git(t, "deploy", "branch", "-D", "gone")
	res := rt.Run(t, "in", t.TempDir(), map[string]any{"source": src, "version": map[string]string{"ref": gone}}, nil)
	res.Fails(t, gone, "the server has no branch or tag it is reachable from")
	require.NotContains(t, res.Stderr, "retrying")
}

// TestManifestInIsAGitCheckout: the get dir is a shallow git repository at
// the version, as git-resource leaves it: real git finds the work tree
// clean, HEAD at the version, its tags, and git-resource's files in .git/.
func TestManifestInIsAGitCheckout(t *testing.T) {
	t.Parallel()
	srv := gittest.New(t)
	srv.CreateRepo(t, "deploy")
	files := map[string]string{
		"apps/web/deployment.yaml":    deployment("1.0"),
		"apps/web/kustomization.yaml": "resources:\n- deployment.yaml\n",
		"README.md":                   "# fleet\n",
		"deep/a/b/c/d.txt":            "d\n",
	}
	srv.Commit(t, "deploy", "main", files, "seed")
	message := "bump web to 1.1\n\nwith a body line"
	version := srv.Commit(t, "deploy", "main", map[string]string{"apps/web/deployment.yaml": deployment("1.1")}, message)
	srv.Tag(t, "deploy", "v1.1", version, "release 1.1")
	srv.Tag(t, "deploy", "latest", version, "")
	tip := srv.Commit(t, "deploy", "main", map[string]string{"README.md": "# fleet, later\n"}, "later")

	for _, tt := range []struct{ name, ref, tags string }{{"an older version", version, "latest,v1.1"}, {"the tip", tip, ""}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			src := map[string]any{"kind": "manifest", "uri": srv.HTTPURL("deploy"), "branch": "main"}
			rt.Run(t, "in", dir, map[string]any{"source": src, "version": map[string]string{"ref": tt.ref}}, nil).OK(t, nil)

			require.Equal(t, tt.ref, gitIn(t, dir, "log", "-1", "--format=%H"))
			require.Equal(t, tt.ref, gitIn(t, dir, "rev-parse", "HEAD"))
			require.Equal(t, "true", gitIn(t, dir, "rev-parse", "--is-shallow-repository"))
			require.Empty(t, gitIn(t, dir, "status", "--porcelain", "--untracked-files=all"), "the work tree is clean, .git/ holds nothing git sees")
			require.NoError(t, gitCmd(t, dir, "diff-index", "--quiet", "HEAD", "--").Run(), "the index's stat data match the files: clean without a refresh")
			gitIn(t, dir, "fsck", "--no-dangling")
			require.Equal(t, srv.Git(t, "deploy", "ls-tree", "-r", tt.ref), gitIn(t, dir, "ls-files", "--format=%(objectmode) blob %(objectname)\t%(path)"))
			require.Equal(t, srv.HTTPURL("deploy"), gitIn(t, dir, "remote", "get-url", "origin"))

			commit := srv.Log(t, "deploy", "main")
			var c gittest.Commit
			for _, lc := range commit {
				if lc.SHA == tt.ref {
					c = lc
				}
			}
			rawOut, err := gitCmd(t, dir, "log", "-1", "--format=format:%B").Output()
			require.NoError(t, err)
			raw := string(rawOut)
			authorDate := gitIn(t, dir, "log", "-1", "--format=%ai")
			committerDate := gitIn(t, dir, "log", "-1", "--format=%ci")
			// git-resource's files, byte for byte as its `in` writes them.
			want := map[string]string{
				"ref":            tt.ref + "\n",
				"commit":         tt.ref + "\n",
				"short_ref":      tt.ref[:7],
				"commit_message": raw,
				"committer":      gittest.AuthorEmail,
				"committer_name": gittest.AuthorName,
				"author":         gittest.AuthorName + "\n",
				"author_date":    authorDate + "\n",
				"committer_date": committerDate + "\n",
				"branch":         "main\n",
				"tags":           tt.tags,
			}
			if tt.tags != "" {
				want["tags"] += "\n"
			}
			for name, content := range want {
				data, err := os.ReadFile(filepath.Join(dir, ".git", name))
				require.NoError(t, err, ".git/%s", name)
				require.Equal(t, content, string(data), ".git/%s", name)
			}
			require.Equal(t, c.Message, strings.TrimRight(raw, "\n"))

			var meta []map[string]string
			data, err := os.ReadFile(filepath.Join(dir, ".git", "metadata.json"))
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(data, &meta), "%s", data)
			wantMeta := []map[string]string{
				{"name": "commit", "value": tt.ref},
				{"name": "author", "value": gittest.AuthorName},
				{"name": "author_date", "value": authorDate, "type": "time"},
				{"name": "committer", "value": gittest.AuthorName},
				{"name": "committer_date", "value": committerDate, "type": "time"},
				{"name": "branch", "value": "main"},
			}
			if tt.tags != "" {
				wantMeta = append(wantMeta, map[string]string{"name": "tags", "value": tt.tags})
			}
			wantMeta = append(wantMeta, map[string]string{"name": "message", "value": raw, "type": "message"})
			require.Equal(t, wantMeta, meta)
		})
	}
}

// TestManifestInListsRefsOnce: a get of the tip asks the server twice, as
// git clone --depth 1 does: one ref listing, which gives the branch's tip
// and the tags on it too, and one pack.
func TestManifestInListsRefsOnce(t *testing.T) {
	t.Parallel()
	var listings, packs atomic.Int64
	srv := gittest.New(t, gittest.WithHTTPFault(func(r *http.Request) gittest.Fault {
		switch {
		case r.Method == http.MethodGet && gittest.Service(r) == "git-upload-pack":
			listings.Add(1)
		case r.Method == http.MethodPost && gittest.Service(r) == "git-upload-pack":
			packs.Add(1)
		}
		return gittest.Fault{}
	}))
	srv.CreateRepo(t, "deploy")
	tip := srv.Commit(t, "deploy", "main", map[string]string{"apps/web.yaml": deployment("1.0")}, "seed")
	srv.Tag(t, "deploy", "v1.0", tip, "release 1.0")

	dir := t.TempDir()
	src := map[string]any{"kind": "manifest", "uri": srv.HTTPURL("deploy"), "branch": "main"}
	rt.Run(t, "in", dir, map[string]any{"source": src, "version": map[string]string{"ref": tip}}, nil).OK(t, nil)
	require.Equal(t, int64(1), listings.Load(), "ref listings")
	require.Equal(t, int64(1), packs.Load(), "packs")
	data, err := os.ReadFile(filepath.Join(dir, ".git", "tags"))
	require.NoError(t, err)
	require.Equal(t, "v1.0\n", string(data), "the tag, from the one listing")
}

// TestManifestInKeepsTheRepoOwnImagesJSON: a repository holding files
// named images.json and manifests.tgz gets them checked out as they are;
// the get's own images.json and manifests.tgz are in .git/gitops/, where
// git sees nothing and put: cluster's path never reads.
func TestManifestInKeepsTheRepoOwnImagesJSON(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, map[string]string{
		"images.json":   "{\"mine\": true}\n",
		"manifests.tgz": "not a tarball: the repo's own file\n",
		"apps/web.yaml": deployment("1.0"),
	})
	dir := t.TempDir()
	rt.Run(t, "in", dir, map[string]any{"source": fx.source(nil), "version": map[string]string{"ref": fx.seed}, "params": map[string]any{"archive": true}}, nil).OK(t, nil)
	for name, content := range fx.files {
		data, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		require.Equal(t, content, string(data), "%s is the repository's", name)
	}
	var found []map[string]any
	data, err := os.ReadFile(filepath.Join(dir, ".git", "gitops", "images.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &found))
	require.Len(t, found, 1)
	require.Equal(t, "apps/web.yaml", found[0]["file"])
	require.FileExists(t, filepath.Join(dir, ".git", "gitops", "manifests.tgz"))
	require.Empty(t, gitIn(t, dir, "status", "--porcelain", "--untracked-files=all"))
}

// TestManifestInLeavesNoCredentialsInGit: the .git that in writes names
// origin without the credentials of a source.uri that carries them, and
// no file of it holds the password.
func TestManifestInLeavesNoCredentialsInGit(t *testing.T) {
	t.Parallel()
	const password = "s3cret-in-the-url"
	srv := gittest.New(t, gittest.WithBasicAuth("ci", password))
	srv.CreateRepo(t, "deploy")
	sha := srv.Commit(t, "deploy", "main", map[string]string{"apps/web.yaml": deployment("1.0")}, "seed")
	uri := "http://ci:" + password + "@" + srv.HTTPAddr() + "/deploy.git"
	dir := t.TempDir()
	res := rt.Run(t, "in", dir, map[string]any{"source": map[string]any{"kind": "manifest", "uri": uri, "branch": "main"}, "version": map[string]string{"ref": sha}}, nil)
	res.OK(t, nil)
	res.NoSecrets(t, password)
	require.Equal(t, srv.HTTPURL("deploy"), gitIn(t, dir, "remote", "get-url", "origin"))
	err := filepath.WalkDir(filepath.Join(dir, ".git"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		require.NotContains(t, string(data), password, p)
		return nil
	})
	require.NoError(t, err)
}

// TestManifestInDirLoadsAsItsTree: put: cluster with path: on a manifest
// get dir loads the tree's objects and nothing of .git/ (metadata.json,
// .git/gitops/images.json: JSON that would not decode as objects).
func TestManifestInDirLoadsAsItsTree(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, map[string]string{"apps/web.yaml": deployment("1.0")})
	build := t.TempDir()
	dir := filepath.Join(build, "config")
	require.NoError(t, os.Mkdir(dir, 0o755))
	rt.Run(t, "in", dir, map[string]any{"source": fx.source(nil), "version": map[string]string{"ref": fx.seed}, "params": map[string]any{"archive": true}}, nil).OK(t, nil)
	require.FileExists(t, filepath.Join(dir, ".git", "metadata.json"))
	require.FileExists(t, filepath.Join(dir, ".git", "gitops", "images.json"))
	root, err := os.OpenRoot(build)
	require.NoError(t, err)
	defer root.Close()
	objs, err := kube.Load(root, "config")
	require.NoError(t, err)
	require.Len(t, objs, 1)
	require.Equal(t, "Deployment", objs[0].GetKind())
}

// TestManifestInOverHTTPSWithSkipSSLVerification: a get over HTTPS with
// skip_ssl_verification, of the tip and of an older commit, lists the
// server's refs (tags, the way to the commit) with the same TLS options as
// its fetch. The ref listing once set go-git's own option beside ours, which
// go-git refuses on our bounded transport: every such get failed.
func TestManifestInOverHTTPSWithSkipSSLVerification(t *testing.T) {
	t.Parallel()
	srv := gittest.New(t, gittest.WithTLS())
	srv.CreateRepo(t, "deploy")
	old := srv.Commit(t, "deploy", "main", map[string]string{"apps/web.yaml": deployment("1.0")}, "old")
	tip := srv.Commit(t, "deploy", "main", map[string]string{"apps/web.yaml": deployment("1.1")}, "tip")
	src := map[string]any{"kind": "manifest", "branch": "main", "uri": srv.HTTPURL("deploy"), "skip_ssl_verification": true}
	for _, ref := range []string{tip, old} {
		dir := t.TempDir()
		rt.Run(t, "in", dir, map[string]any{"source": src, "version": map[string]string{"ref": ref}}, nil).OK(t, nil)
		data, err := os.ReadFile(filepath.Join(dir, ".git", "ref"))
		require.NoError(t, err)
		require.Equal(t, ref, strings.TrimSpace(string(data)))
	}
}
