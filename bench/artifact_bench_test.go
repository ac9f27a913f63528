package bench

import (
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ggcr "github.com/google/go-containerregistry/pkg/registry"

	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
)

// BenchmarkArtifact runs artifact out of the 2,000-file config tree
// (configFile) with one image changed in its 40 files, next to the
// config-repo put of the same change: manifest out on the 10,000-commit
// repository of manifestRepo. Both in the same run, taking turns; the
// "git" columns are the manifest put. The tree is written to the build dir
// before each artifact put, outside its timing, as a render step would
// leave it.
func BenchmarkArtifact(b *testing.B) {
	srv := manifestRepo(b)
	rt.Binaries(b)
	registry := httptest.NewServer(ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0))))
	b.Cleanup(registry.Close)
	artifactSource := map[string]any{"kind": "artifact", "repository": strings.TrimPrefix(registry.URL, "http://") + "/acme/config"}
	manifestSource := map[string]any{"kind": "manifest", "uri": srv.HTTPURL("config"), "branch": "main"}
	var treeBytes int64

	n := 0
	b.Run("out", func(b *testing.B) {
		var p pair
		for b.Loop() {
			n++
			tag := fmt.Sprintf("2.0.%d", n)
			dir := b.TempDir()
			treeBytes = writeConfigTree(b, filepath.Join(dir, "tree"), tag)
			p.turn(func() usage {
				req := map[string]any{"source": artifactSource, "params": map[string]any{"path": "tree", "tag": tag,
					"source": "https://git.example.com/acme/config.git", "revision": fmt.Sprintf("main@sha1:%040x", n)}}
				return run(b, "out", dir, req, true)
			}, func() {
				req := map[string]any{"source": manifestSource, "params": map[string]any{"images": []map[string]any{{"repository": "ghcr.io/acme/web", "tag": tag}}}}
				run(b, "out", b.TempDir(), req, true)
			})
		}
		p.report(b, treeBytes)
	})
}

// writeConfigTree writes the 2,000 files of configFile under dir, with
// ghcr.io/acme/web at tag, and returns their bytes.
func writeConfigTree(b *testing.B, dir, tag string) int64 {
	b.Helper()
	var size int64
	for f := range 2000 {
		name, content := configFile(f)
		content = strings.ReplaceAll(content, "ghcr.io/acme/web:1.0.0", "ghcr.io/acme/web:"+tag)
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			b.Fatal(err)
		}
		size += int64(len(content))
	}
	return size
}
