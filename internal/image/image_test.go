package image_test

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/internal/image"
	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
)

func TestMain(m *testing.M) { rt.Main(m) }

func TestCACertificates(t *testing.T) {
	rest := image.CACertificates()
	require.Equal(t, rest, image.CACertificates(), "the same bundle every time")
	seen := map[string]bool{}
	for len(rest) > 0 {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		require.NotNil(t, block, "the bundle is PEM throughout")
		require.Equal(t, "CERTIFICATE", block.Type)
		cert, err := x509.ParseCertificate(block.Bytes)
		require.NoError(t, err)
		require.True(t, cert.IsCA, "%s is a CA", cert.Subject)
		require.False(t, seen[string(block.Bytes)], "%s twice", cert.Subject)
		seen[string(block.Bytes)] = true
	}
	require.Greater(t, len(seen), 100, "the Mozilla roots")
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(image.CACertificates()), "Go's SSL_CERT_FILE reader takes it")
}

// TestOptionsErrors: every contradiction is reported at once, before
// anything is built.
func TestOptionsErrors(t *testing.T) {
	notLayout := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(notLayout, "notes.txt"), nil, 0o644))
	for _, tc := range []struct {
		name string
		o    image.Options
		want []string
	}{
		{"nothing", image.Options{}, []string{"the module root to build is required", "nothing to do"}},
		{"layer and push", image.Options{Root: ".", Layer: "l.tar", Push: []string{"r/x:1"}, Platforms: []string{"linux/amd64", "linux/arm64"}},
			[]string{"cannot be combined with -o or -push", "-layer needs exactly one platform, got 2: linux/amd64,linux/arm64"}},
		{"bad platform and reference", image.Options{Root: ".", Push: []string{"Registry/UPPER:tag"}, Platforms: []string{"linux/s390x", "windows/amd64", "linux/arm64/v8"}},
			[]string{`push reference "Registry/UPPER:tag"`, `platform "linux/s390x": want linux/amd64 or linux/arm64`, `platform "windows/amd64"`, `platform "linux/arm64/v8"`}},
		{"a directory that is not a layout", image.Options{Root: ".", Dir: notLayout}, []string{"-o " + notLayout + ": the directory is neither empty nor an OCI layout: not replacing it"}},
		{"password alone", image.Options{Root: ".", Dir: "d", Password: "p"}, []string{"a registry password without a username: set REGISTRY_USERNAME too"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // no command may run
			_, err := image.Make(ctx, tc.o)
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

// TestDockerfileMatchesLayout keeps the Dockerfile in step with `make image`,
// since docker build cannot run here: its build stage runs the same builder
// for the target platform with the toolchain go.mod pins and unpacks the
// layer TestMakeImage checks is the one the index holds; the final stage is
// that layer on nothing, with the config of the index's images.
func TestDockerfileMatchesLayout(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	require.NoError(t, err)
	df := string(data)
	out, err := exec.Command("go", "mod", "edit", "-json", filepath.Join(root, "go.mod")).Output()
	require.NoError(t, err)
	var mod struct{ Go string }
	require.NoError(t, json.Unmarshal(out, &mod))

	stages := regexp.MustCompile(`(?m)^FROM (.+)$`).FindAllStringSubmatch(df, -1)
	require.Len(t, stages, 3, "build, test, final")
	require.Equal(t, "--platform=$BUILDPLATFORM golang:"+mod.Go+"-bookworm AS build", stages[0][1], "the Go of go.mod, cross-compiling")
	require.Equal(t, "build AS test", stages[1][1])
	require.Equal(t, "scratch", stages[2][1], "nothing under the layer, as in the index")
	build, final, _ := strings.Cut(df, "\nFROM scratch\n")
	for _, want := range []string{
		"ARG TARGETARCH\n",
		"RUN " + dockerfileLayerCommand + " \\\n && mkdir /rootfs && tar -xf /layer.tar -C /rootfs\n",
	} {
		require.Contains(t, build, want)
	}
	require.Contains(t, final, "COPY --from=build /rootfs/ /\n")
	require.Contains(t, final, "ENV "+strings.Join(image.Env, " ")+"\n")
	for k, v := range map[string]string{
		image.LabelSource: image.Source, image.LabelLicenses: image.Licenses,
		image.LabelRevision: "$REVISION", image.LabelVersion: "$VERSION",
	} {
		require.Regexp(t, `(?m) `+regexp.QuoteMeta(k+"="+v)+`( \\)?$`, final, "LABEL %s", k)
	}
}

// dockerfileLayerCommand is what the Dockerfile runs, with the platform
// Docker builds for; TestMakeImage runs it for linux/amd64.
const dockerfileLayerCommand = "go run ./hack/image -platform linux/${TARGETARCH} -layer /layer.tar"

// TestDockerignore: the build context is the sources: not .git, not what is
// built into bin/ or tools/*/bin/, and nothing the Dockerfile builds or
// tests (every package of the module; no git needed, as in its test stage).
func TestDockerignore(t *testing.T) {
	f, err := os.Open(filepath.Join(root, ".dockerignore"))
	require.NoError(t, err)
	defer f.Close()
	var patterns []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	require.NoError(t, sc.Err())
	ignored := func(path string) bool {
		for _, p := range patterns {
			for dir := path; dir != "."; dir = filepath.Dir(dir) {
				if ok, _ := filepath.Match(p, dir); ok {
					return true
				}
			}
		}
		return false
	}
	for _, p := range []string{".git/config", "bin/check", "bin/image/index.json", "tools/k8s/bin/kube-apiserver"} {
		require.True(t, ignored(p), "%s is not sent to the builder", p)
	}
	cmd := exec.Command("go", "list", "-f", "{{.Dir}}", "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	require.NoError(t, err)
	abs, err := filepath.Abs(root)
	require.NoError(t, err)
	needed := []string{"go.mod", "go.sum", "Makefile"}
	for _, dir := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(abs, dir)
		require.NoError(t, err)
		needed = append(needed, filepath.Join(rel, "x.go"))
	}
	for _, f := range needed {
		require.False(t, ignored(f), "%s is built or tested by the Dockerfile", f)
	}
}
