package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// Layout lists the paths of the image, as the Dockerfile lays them out.
var Layout = struct{ Check, Cluster, In, Out, CACerts, Tmp string }{
	Check:   "opt/resource/check",
	Cluster: "opt/resource/cluster",
	In:      "opt/resource/in",
	Out:     "opt/resource/out",
	CACerts: "etc/ssl/certs/ca-certificates.crt",
	Tmp:     "tmp/",
}

// Env is the environment of the image's config (the Dockerfile's ENV).
// Concourse mounts the worker's certificates over /etc/ssl/certs, so the
// bundle keeps Debian's path.
var Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "SSL_CERT_FILE=/" + Layout.CACerts}

// Platforms are the platforms Make builds by default, in the index's order.
var Platforms = []string{"linux/amd64", "linux/arm64"}

// Label keys of the image config and the index annotations, and the values
// that do not depend on the commit.
const (
	LabelSource   = "org.opencontainers.image.source"
	LabelRevision = "org.opencontainers.image.revision"
	LabelVersion  = "org.opencontainers.image.version"
	LabelLicenses = "org.opencontainers.image.licenses"

	Source   = "https://github.com/gitops-resource/gitops-resource"
	Licenses = "Apache-2.0"
)

// Options say what Make builds and where the result goes. Root and one of
// Dir, Push or Layer are required; the rest have defaults.
type Options struct {
	// Root is the module root to build (the directory holding go.mod).
	Root string
	// Platforms to build, as os/arch; default Platforms.
	Platforms []string
	// Version and Revision are the labels; default `git describe --tags
	// --always --dirty` and `git rev-parse HEAD` in Root.
	Version, Revision string
	// Dir receives the index as an OCI image layout. A layout already there
	// is replaced; any other non-empty directory is refused.
	Dir string
	// Push lists the references to push the index to.
	Push []string
	// Username and Password authenticate the pushes; without Username the
	// keychain of docker's config.json ($DOCKER_CONFIG) is used.
	Username, Password string
	// Transport carries the pushes; default remote.DefaultTransport.
	Transport http.RoundTripper
	// Layer receives the layer of the one platform asked for, as an
	// uncompressed tar, instead of an index (the Dockerfile's build stage
	// unpacks it).
	Layer string
	// Log receives one line per step; default io.Discard.
	Log io.Writer
}

// validate applies the defaults and reports every problem at once; it
// returns the platforms and references parsed.
func (o *Options) validate() ([]v1.Platform, []name.Reference, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if len(o.Platforms) == 0 {
		o.Platforms = Platforms
	}
	var errs []error
	if o.Root == "" {
		errs = append(errs, errors.New("the module root to build is required"))
	}
	if o.Dir == "" && len(o.Push) == 0 && o.Layer == "" {
		errs = append(errs, errors.New("nothing to do: give a layout dir (-o), a reference to push (-push) or a layer file (-layer)"))
	}
	if o.Layer != "" && (o.Dir != "" || len(o.Push) > 0) {
		errs = append(errs, errors.New("-layer writes one platform's layer and no index: it cannot be combined with -o or -push"))
	}
	if entries, err := os.ReadDir(o.Dir); o.Dir != "" && err == nil && len(entries) > 0 {
		if _, err := os.Stat(filepath.Join(o.Dir, "oci-layout")); err != nil {
			errs = append(errs, fmt.Errorf("-o %s: the directory is neither empty nor an OCI layout: not replacing it", o.Dir))
		}
	}
	if o.Layer != "" && len(o.Platforms) != 1 {
		errs = append(errs, fmt.Errorf("-layer needs exactly one platform, got %d: %s", len(o.Platforms), strings.Join(o.Platforms, ",")))
	}
	refs := make([]name.Reference, 0, len(o.Push))
	for _, s := range o.Push {
		ref, err := name.ParseReference(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("push reference %q: %w", s, err))
			continue
		}
		refs = append(refs, ref)
	}
	if o.Password != "" && o.Username == "" {
		errs = append(errs, errors.New("a registry password without a username: set REGISTRY_USERNAME too"))
	}
	platforms := make([]v1.Platform, 0, len(o.Platforms))
	for _, s := range o.Platforms {
		p, err := v1.ParsePlatform(s)
		if err != nil || p.OS != "linux" || (p.Architecture != "amd64" && p.Architecture != "arm64") || p.Variant != "" {
			errs = append(errs, fmt.Errorf("platform %q: want linux/amd64 or linux/arm64", s))
			continue
		}
		platforms = append(platforms, *p)
	}
	return platforms, refs, errors.Join(errs...)
}

// Make builds the image for each platform and writes the index to Dir,
// pushes it to each of Push, or writes the one platform's layer to Layer.
// It returns the index's digest (zero with Layer). The right to push is
// checked before anything is built.
func Make(ctx context.Context, o Options) (v1.Hash, error) {
	platforms, refs, err := o.validate()
	if err != nil {
		return v1.Hash{}, err
	}
	toolchain, err := goToolchain(ctx, o.Root)
	if err != nil {
		return v1.Hash{}, err
	}
	if o.Layer == "" && (o.Version == "" || o.Revision == "") {
		if err := describe(ctx, &o); err != nil {
			return v1.Hash{}, err
		}
	}
	var keychain authn.Keychain = authn.DefaultKeychain
	if o.Username != "" {
		keychain = basicKeychain{authn.Basic{Username: o.Username, Password: o.Password}}
	}
	tr := o.Transport
	if tr == nil {
		tr = remote.DefaultTransport
	}
	for _, ref := range refs {
		if err := remote.CheckPushPermission(ref, keychain, tr); err != nil {
			return v1.Hash{}, pushError(ref, err)
		}
	}
	certs := CACertificates()
	if o.Layer != "" {
		bins, err := goBuild(ctx, o.Root, toolchain, platforms[0])
		if err != nil {
			return v1.Hash{}, err
		}
		if err := os.WriteFile(o.Layer, layerTar(bins, certs), 0o644); err != nil {
			return v1.Hash{}, fmt.Errorf("write the layer: %w", err)
		}
		fmt.Fprintf(o.Log, "%s: wrote the layer to %s\n", platforms[0], o.Layer)
		return v1.Hash{}, nil
	}
	labels := map[string]string{LabelSource: Source, LabelRevision: o.Revision, LabelVersion: o.Version, LabelLicenses: Licenses}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range platforms {
		bins, err := goBuild(ctx, o.Root, toolchain, p)
		if err != nil {
			return v1.Hash{}, err
		}
		img, size, err := Image(layerTar(bins, certs), p, Env, labels, gzip.BestCompression)
		if err != nil {
			return v1.Hash{}, fmt.Errorf("%s: %w", p, err)
		}
		fmt.Fprintf(o.Log, "%s: binaries check %.1f MiB and cluster %.1f MiB, CA bundle %.0f KiB, layer %.1f MiB compressed\n",
			p, mib(len(bins.check)), mib(len(bins.cluster)), float64(len(certs))/1024, mib(int(size)))
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	idx = mutate.Annotations(idx, labels).(v1.ImageIndex)
	digest, err := idx.Digest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("index digest: %w", err)
	}
	if o.Dir != "" {
		if err := writeLayout(o.Dir, idx); err != nil {
			return v1.Hash{}, err
		}
		fmt.Fprintf(o.Log, "wrote the OCI layout %s: index %s (version %s, revision %s)\n", o.Dir, digest, o.Version, o.Revision)
	}
	for _, ref := range refs {
		if err := remote.WriteIndex(ref, idx, remote.WithContext(ctx), remote.WithAuthFromKeychain(keychain), remote.WithTransport(tr)); err != nil {
			return v1.Hash{}, pushError(ref, err)
		}
		fmt.Fprintf(o.Log, "pushed %s@%s\n", ref, digest)
	}
	return digest, nil
}

// basicKeychain gives the same username and password to every registry.
type basicKeychain struct{ basic authn.Basic }

func (k basicKeychain) Resolve(authn.Resource) (authn.Authenticator, error) { return &k.basic, nil }

// pushError says which push failed and, when the registry refused the
// credentials, where they come from.
func pushError(ref name.Reference, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden) {
		return fmt.Errorf("push %s: the registry refused the credentials (REGISTRY_USERNAME and REGISTRY_PASSWORD, else docker's config.json: docker login): %w", ref, err)
	}
	return fmt.Errorf("push %s: %w", ref, err)
}

func mib(n int) float64 { return float64(n) / (1 << 20) }

// CACertificates is the image's CA bundle: the Mozilla roots of the NSS
// trust store that golang.org/x/crypto/x509roots/fallback carries (pinned by
// go.sum), PEM-encoded in the module's order. Roots NSS trusts only for
// certificates issued before a date are left out: a PEM bundle cannot say
// so, and they are on their way out of the store.
func CACertificates() []byte {
	var b bytes.Buffer
	for root := range bundle.Roots() {
		if root.Constraint == nil {
			pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: root.Certificate}) // a bytes.Buffer does not fail
		}
	}
	return b.Bytes()
}

// Image is an image for p of one layer on nothing: data is the layer as an
// uncompressed tar, gzipped at level; env and labels go into the config,
// with / as the working dir. It also returns the layer's compressed size.
// Make builds each platform of the resource image with it, at
// gzip.BestCompression; the real-Concourse suite its task images.
func Image(data []byte, p v1.Platform, env []string, labels map[string]string, level int) (v1.Image, int64, error) {
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithCompressionLevel(level), tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, 0, fmt.Errorf("compress the layer: %w", err)
	}
	size, err := layer.Size()
	if err != nil {
		return nil, 0, fmt.Errorf("compress the layer: %w", err)
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, 0, fmt.Errorf("append the layer: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, 0, fmt.Errorf("read the config: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = p.OS, p.Architecture
	cfg.Config.Env = env
	cfg.Config.WorkingDir = "/"
	cfg.Config.Labels = labels
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, 0, fmt.Errorf("write the config: %w", err)
	}
	return img, size, nil
}

// layerTar is the one layer, uncompressed: the directories, the CA bundle,
// the check binary once and two hard links to it (in, out), the cluster
// binary they start for kind cluster, and a world-writable /tmp (the
// resource writes known_hosts and unpacks archives there), in name order,
// owned by root, dated 1970-01-01, so it depends only on its content.
func layerTar(bins binaries, certs []byte) []byte {
	epoch := time.Unix(0, 0)
	dir := func(name string, mode int64) *tar.Header {
		return &tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: epoch}
	}
	file := func(name string, mode int64, data []byte) *tar.Header {
		return &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: epoch}
	}
	link := func(name string) *tar.Header {
		return &tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: Layout.Check, Mode: 0o755, ModTime: epoch}
	}
	entries := []struct {
		h    *tar.Header
		data []byte
	}{
		{dir("etc/", 0o755), nil},
		{dir("etc/ssl/", 0o755), nil},
		{dir("etc/ssl/certs/", 0o755), nil},
		{file(Layout.CACerts, 0o644, certs), certs},
		{dir("opt/", 0o755), nil},
		{dir("opt/resource/", 0o755), nil},
		{file(Layout.Check, 0o755, bins.check), bins.check},
		{file(Layout.Cluster, 0o755, bins.cluster), bins.cluster},
		{link(Layout.In), nil},
		{link(Layout.Out), nil},
		{dir(Layout.Tmp, 0o1777), nil},
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// Writes to a bytes.Buffer of headers that fit USTAR and of data of the
	// size announced cannot fail.
	for _, e := range entries {
		tw.WriteHeader(e.h)
		tw.Write(e.data)
	}
	tw.Close()
	return buf.Bytes()
}

// goToolchain is the toolchain that builds the binary: go.mod's toolchain
// line, else its go line, so a machine with another Go downloads that one
// (from the module proxy) instead of building a different binary.
func goToolchain(ctx context.Context, root string) (string, error) {
	out, err := run(ctx, root, nil, "go", "mod", "edit", "-json")
	if err != nil {
		return "", fmt.Errorf("read go.mod: %w", err)
	}
	var mod struct{ Go, Toolchain string }
	if err := json.Unmarshal([]byte(out), &mod); err != nil {
		return "", fmt.Errorf("read go.mod: go mod edit -json: %w", err)
	}
	if mod.Toolchain != "" {
		return mod.Toolchain, nil
	}
	if mod.Go == "" {
		return "", fmt.Errorf("read go.mod: %s has no go line to pin the toolchain by", filepath.Join(root, "go.mod"))
	}
	return "go" + mod.Go, nil
}

// binaries are the two programs of the image: check (also in and out), and
// cluster, which check, in and out start for kind cluster so that they do
// not link client-go (pkg/app).
type binaries struct{ check, cluster []byte }

// goBuild builds ./check and ./cluster for p and returns the binaries.
// Everything of the environment that changes the output is set here: the
// caller's GOFLAGS, GOAMD64, GOEXPERIMENT… do not reach the build.
func goBuild(ctx context.Context, root, toolchain string, p v1.Platform) (binaries, error) {
	dir, err := os.MkdirTemp("", "gitops-image-")
	if err != nil {
		return binaries{}, fmt.Errorf("build for %s: %w", p, err)
	}
	defer os.RemoveAll(dir)
	env := []string{"CGO_ENABLED=0", "GOOS=" + p.OS, "GOARCH=" + p.Architecture, "GOAMD64=v1", "GOARM64=v8.0",
		"GOFLAGS=-mod=readonly", "GOEXPERIMENT=", "GOTOOLCHAIN=" + toolchain}
	if _, err := run(ctx, root, env, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", dir+string(filepath.Separator), "./check", "./cluster"); err != nil {
		return binaries{}, fmt.Errorf("build for %s: %w", p, err)
	}
	var bins binaries
	for name, data := range map[string]*[]byte{"check": &bins.check, "cluster": &bins.cluster} {
		if *data, err = os.ReadFile(filepath.Join(dir, name)); err != nil {
			return binaries{}, fmt.Errorf("build for %s: %w", p, err)
		}
	}
	return bins, nil
}

// describe fills the version and revision labels left empty from git.
func describe(ctx context.Context, o *Options) error {
	var errs []error
	if o.Revision == "" {
		rev, err := run(ctx, o.Root, nil, "git", "rev-parse", "HEAD")
		if err != nil {
			errs = append(errs, fmt.Errorf("label %s: %w: give the commit (REVISION=, -revision)", LabelRevision, err))
		}
		o.Revision = rev
	}
	if o.Version == "" {
		ver, err := run(ctx, o.Root, nil, "git", "describe", "--tags", "--always", "--dirty")
		if err != nil {
			errs = append(errs, fmt.Errorf("label %s: %w: give the version (VERSION=, -version)", LabelVersion, err))
		}
		o.Version = ver
	}
	return errors.Join(errs...)
}

// run runs a command in dir with env added to this process's, and returns
// its stdout, trimmed; an error quotes the command and its stderr.
func run(ctx context.Context, dir string, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s in %s: %w: %s", strings.Join(args, " "), dir, err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// writeLayout writes idx as an OCI image layout at dir, replacing a layout
// already there (its old blobs with it; validate refused any other dir).
func writeLayout(dir string, idx v1.ImageIndex) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("write the OCI layout: %w", err)
	}
	if _, err := layout.Write(dir, idx); err != nil {
		return fmt.Errorf("write the OCI layout %s: %w", dir, err)
	}
	return nil
}
