package image_test

import (
	"archive/tar"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/internal/gittest"
	"github.com/gitops-resource/gitops-resource/internal/image"
	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
	"github.com/gitops-resource/gitops-resource/internal/testenv/concourse"
)

// root is the repository's root, where `make image` runs.
const root = "../.."

// TestMakeImage is issue #21 end to end: `make image PUSH=…` pushes an index
// of linux/amd64 and linux/arm64 to a registry (in-process, behind basic
// auth: REGISTRY_USERNAME/REGISTRY_PASSWORD) and writes the same index as an
// OCI layout; each platform's binaries, taken out of its layer, answer a
// semver check against a git server and a check of kind cluster (arm64
// under qemu); and the same commit
// built again from a copy of the tree with an empty build cache gives the
// same digest.
func TestMakeImage(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the image four times and runs qemu (make test runs it)")
	}
	// Its cold compiles hold both cores for minutes; beside them the
	// real-Concourse suite (e2e/concourse) lost a step's output twice
	// (Concourse's worker: attach failed, process does not exist). The two
	// take turns on the machine's stack lock.
	lock, err := concourse.LockMachine(io.Discard)
	require.NoError(t, err, "take the machine's Concourse stack lock")
	t.Cleanup(func() { lock.Close() })
	qemu, err := exec.LookPath("qemu-aarch64-static")
	if err != nil {
		t.Fatalf("qemu-aarch64-static runs the arm64 binary: run hack/deps.sh (apt-get install qemu-user-static): %v", err)
	}
	const user, password = "ci", "the-registry-password"
	reg := httptest.NewServer(basicAuth(registry.New(registry.Logger(log.New(io.Discard, "", 0))), user, password))
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")
	auth := remote.WithAuth(&authn.Basic{Username: user, Password: password})
	creds := []string{"REGISTRY_USERNAME=" + user, "REGISTRY_PASSWORD=" + password}

	// Refused credentials fail before anything is built, and are not shown.
	out, err := makeImage(t, root, []string{"REGISTRY_USERNAME=" + user, "REGISTRY_PASSWORD=not-the-password"}, "PUSH="+host+"/gitops-resource:test", "IMAGE_DIR="+t.TempDir())
	require.Error(t, err)
	require.Contains(t, out, "image: push "+host+"/gitops-resource:test: the registry refused the credentials (REGISTRY_USERNAME and REGISTRY_PASSWORD, else docker's config.json: docker login): ")
	require.Contains(t, out, "401 Unauthorized")
	require.NotContains(t, out, "binary", "nothing was built")
	require.NotContains(t, out, "not-the-password")

	dir := t.TempDir()
	out, err = makeImage(t, root, creds, "PUSH="+host+"/gitops-resource:test "+host+"/gitops-resource:latest", "IMAGE_DIR="+dir)
	require.NoError(t, err, out)
	require.NotContains(t, out, password)

	ref, err := name.ParseReference(host + "/gitops-resource:test")
	require.NoError(t, err)
	idx, err := remote.Index(ref, auth)
	require.NoError(t, err)
	digest, err := idx.Digest()
	require.NoError(t, err)
	local, err := layout.ImageIndexFromPath(dir)
	require.NoError(t, err)
	localDigest, err := local.Digest()
	require.NoError(t, err)
	require.Equal(t, digest, localDigest, "the layout holds the index pushed")
	latest, err := remote.Head(mustRef(t, host+"/gitops-resource:latest"), auth)
	require.NoError(t, err)
	require.Equal(t, digest, latest.Digest, "every PUSH reference gets the index")

	revision := strings.TrimSpace(gitOut(t, "rev-parse", "HEAD"))
	version := strings.TrimSpace(gitOut(t, "describe", "--tags", "--always", "--dirty"))
	manifest, err := idx.IndexManifest()
	require.NoError(t, err)
	require.Len(t, manifest.Manifests, 2)
	wantLabels := map[string]string{
		image.LabelSource: image.Source, image.LabelLicenses: image.Licenses,
		image.LabelRevision: revision, image.LabelVersion: version,
	}
	require.Equal(t, wantLabels, manifest.Annotations)

	srv := gittest.New(t)
	srv.CreateRepo(t, "app")
	srv.Commit(t, "app", "version", map[string]string{"version": "1.2.3"}, "version 1.2.3")
	check := map[string]any{"source": map[string]any{"kind": "semver", "uri": srv.HTTPURL("app"), "branch": "version", "file": "version"}}
	clusterCheck := map[string]any{"source": map[string]any{"kind": "cluster"}}
	const clusterConfigError = "error: source.kubeconfig (inline YAML) or source.server with source.token is required for kind cluster"

	for i, want := range []string{"linux/amd64", "linux/arm64"} {
		desc := manifest.Manifests[i]
		require.Equal(t, want, desc.Platform.String())
		img, err := idx.Image(desc.Digest)
		require.NoError(t, err)
		cfg, err := img.ConfigFile()
		require.NoError(t, err)
		require.Equal(t, want, cfg.OS+"/"+cfg.Architecture)
		require.Equal(t, wantLabels, cfg.Config.Labels)
		require.Equal(t, image.Env, cfg.Config.Env)
		layers, err := img.Layers()
		require.NoError(t, err)
		require.Len(t, layers, 1, "one layer on nothing")
		size, err := layers[0].Size()
		require.NoError(t, err)
		t.Logf("%s: layer %.2f MiB compressed", want, float64(size)/(1<<20))
		require.LessOrEqual(t, size, int64(20<<20), "%s: at most 20 MiB compressed", want)

		entries := layerEntries(t, layers[0])
		require.Equal(t, []string{"etc/", "etc/ssl/", "etc/ssl/certs/", image.Layout.CACerts, "opt/", "opt/resource/",
			image.Layout.Check, image.Layout.Cluster, image.Layout.In, image.Layout.Out, image.Layout.Tmp}, entries.names, "in name order")
		for _, link := range []string{image.Layout.In, image.Layout.Out} {
			h := entries.headers[link]
			require.Equal(t, byte(tar.TypeLink), h.Typeflag, "%s is a hard link, so the image pays for the binary once", link)
			require.Equal(t, image.Layout.Check, h.Linkname)
		}
		require.Equal(t, int64(0o755), entries.headers[image.Layout.Check].Mode)
		require.Equal(t, int64(0o755), entries.headers[image.Layout.Cluster].Mode)
		require.Equal(t, int64(0o1777), entries.headers[image.Layout.Tmp].Mode, "a /tmp anyone may write, as distroless has")
		require.Equal(t, image.CACertificates(), entries.data[image.Layout.CACerts])

		binDir := t.TempDir()
		bin, cluster := filepath.Join(binDir, "check"), filepath.Join(binDir, "cluster")
		require.NoError(t, os.WriteFile(bin, entries.data[image.Layout.Check], 0o755))
		require.NoError(t, os.WriteFile(cluster, entries.data[image.Layout.Cluster], 0o755))
		for _, b := range []string{bin, cluster} {
			file, err := exec.Command("file", b).CombinedOutput()
			require.NoError(t, err, "file(1): run hack/deps.sh")
			require.Contains(t, string(file), "statically linked", "CGO_ENABLED=0: the binary needs nothing from a base")
		}
		command := []string{bin}
		if desc.Platform.Architecture == "arm64" {
			command = []string{qemu, bin}
		}
		var versions []map[string]string
		rt.RunCommand(t.Context(), t, command, "", check, nil).OK(t, &versions)
		require.Equal(t, []map[string]string{{"number": "1.2.3"}}, versions, "%s: the binary of the image answers check", want)
		// check hands kind cluster to the cluster binary beside it by exec;
		// qemu-user cannot exec an arm64 binary without binfmt_misc, so on
		// arm64 the cluster binary answers alone (argv[0] "cluster": check).
		if desc.Platform.Architecture == "arm64" {
			command = []string{qemu, cluster}
		}
		rt.RunCommand(t.Context(), t, command, "", clusterCheck, nil).Fails(t, clusterConfigError)
	}

	// The Dockerfile's build stage: the same builder writes the layer it
	// unpacks, the very layer of the index.
	tarFile := filepath.Join(t.TempDir(), "layer.tar")
	layerCmd := strings.Fields(strings.NewReplacer("${TARGETARCH}", "amd64", "/layer.tar", tarFile).Replace(dockerfileLayerCommand))
	cmd := exec.CommandContext(t.Context(), layerCmd[0], layerCmd[1:]...)
	cmd.Dir = root
	layerOut, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s\n%s", cmd, layerOut)
	amd64, err := idx.Image(manifest.Manifests[0].Digest)
	require.NoError(t, err)
	cfg, err := amd64.ConfigFile()
	require.NoError(t, err)
	f, err := os.Open(tarFile)
	require.NoError(t, err)
	defer f.Close()
	diffID, _, err := v1.SHA256(f)
	require.NoError(t, err)
	require.Equal(t, cfg.RootFS.DiffIDs[0], diffID, "the Dockerfile unpacks the layer of the index")

	// The same commit again: another directory, an empty build cache.
	copyDir := copyTree(t)
	out, err = makeImage(t, copyDir, append(creds, "GOCACHE="+t.TempDir()),
		"PUSH="+host+"/gitops-resource:again", "IMAGE_DIR="+t.TempDir(), "VERSION="+version, "REVISION="+revision)
	require.NoError(t, err, out)
	again, err := remote.Head(mustRef(t, host+"/gitops-resource:again"), auth)
	require.NoError(t, err)
	require.Equal(t, digest, again.Digest, "the same commit gives the same index:\n%s", out)
}

// makeImage runs `make image` with vars in dir, with env added to the
// test's, and returns its output.
func makeImage(t *testing.T, dir string, env []string, vars ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "make", append([]string{"--no-print-directory", "-C", dir, "image"}, vars...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	t.Logf("make image %s: %v\n%s", strings.Join(vars, " "), err, out)
	return string(out), err
}

// copyTree copies the files of the work tree git knows of or would add
// (committed or not: what `make image` builds) to a new directory.
func copyTree(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	for _, f := range strings.Split(strings.TrimRight(gitOut(t, "ls-files", "-z", "--cached", "--others", "--exclude-standard"), "\x00"), "\x00") {
		data, err := os.ReadFile(filepath.Join(root, f))
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the work tree
		}
		require.NoError(t, err)
		fi, err := os.Stat(filepath.Join(root, f))
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Join(dst, filepath.Dir(f)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dst, f), data, fi.Mode().Perm()))
	}
	return dst
}

func gitOut(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = root
	out, err := cmd.Output()
	require.NoError(t, err, "git %s", strings.Join(args, " "))
	return string(out)
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(s)
	require.NoError(t, err)
	return ref
}

// layer is the entries of a layer: names in order, headers and contents.
type layer struct {
	names   []string
	headers map[string]*tar.Header
	data    map[string][]byte
}

func layerEntries(t *testing.T, l v1.Layer) layer {
	t.Helper()
	rc, err := l.Uncompressed()
	require.NoError(t, err)
	defer rc.Close()
	out := layer{headers: map[string]*tar.Header{}, data: map[string][]byte{}}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		data, err := io.ReadAll(tr)
		require.NoError(t, err)
		out.names = append(out.names, h.Name)
		out.headers[h.Name], out.data[h.Name] = h, data
	}
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
