package image_test

import (
	"archive/tar"
	"errors"
	"io"
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

func TestImageLayout(t *testing.T) {
	bin := filepath.Join(rt.Binaries(t), "check")
	img, err := image.Build(bin, "/etc/ssl/certs/ca-certificates.crt")
	require.NoError(t, err)

	cfg, err := img.ConfigFile()
	require.NoError(t, err)
	require.Equal(t, "linux", cfg.OS)
	require.Equal(t, "amd64", cfg.Architecture)

	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 1)
	rc, err := layers[0].Uncompressed()
	require.NoError(t, err)
	defer rc.Close()
	entries := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		entries[h.Name] = h
	}
	check := entries[image.Layout.Check]
	require.NotNil(t, check, "check is in the image")
	require.Equal(t, int64(0o755), check.Mode)
	for _, link := range []string{image.Layout.In, image.Layout.Out} {
		h := entries[link]
		require.NotNil(t, h, link)
		require.Equal(t, byte(tar.TypeLink), h.Typeflag, "%s is a hard link, so the image pays for the binary once", link)
		require.Equal(t, image.Layout.Check, h.Linkname)
	}
	require.NotNil(t, entries[image.Layout.CACerts], "CA certificates for HTTPS remotes")

	size, err := layers[0].Size()
	require.NoError(t, err)
	t.Logf("compressed layer: %.1f MiB", float64(size)/(1<<20))
}

func TestBinaryIsStatic(t *testing.T) {
	out, err := exec.Command("file", filepath.Join(rt.Binaries(t), "check")).CombinedOutput()
	if err != nil {
		t.Skipf("file(1) is not installed: %v", err)
	}
	require.Contains(t, string(out), "statically linked", "CGO_ENABLED=0: the binary runs on a distroless static base")
}

// TestDockerfileMatchesLayout keeps the Dockerfile in step with the layout
// this package builds, since docker build cannot run here.
func TestDockerfileMatchesLayout(t *testing.T) {
	data, err := os.ReadFile("../../Dockerfile")
	require.NoError(t, err)
	df := string(data)
	for _, want := range []string{
		"CGO_ENABLED=0 go build",
		"-o /" + image.Layout.Check + " ./check",
		"ln /" + image.Layout.Check + " /" + image.Layout.In,
		"ln /" + image.Layout.Check + " /" + image.Layout.Out,
		"AS test",
		"COPY --from=build /opt/resource /opt/resource",
	} {
		require.Contains(t, df, want)
	}
	stages := regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllStringSubmatch(df, -1)
	require.GreaterOrEqual(t, len(stages), 3, "multi-stage: build, test, final")
	final := stages[len(stages)-1][1]
	require.True(t, strings.HasPrefix(final, "gcr.io/distroless/static"), "minimal final base with CA certificates, got %s", final)
}
