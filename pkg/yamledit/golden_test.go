package yamledit

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/gitops-resource/gitops-resource/pkg/imageref"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden out.yaml files")

const (
	digestA = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	digestB = "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
)

// setImage is what the manifest kind does: point every reference to repo at tag/digest.
func setImage(repo, tag, digest string, opts FindOptions) func(*File) ([]Splice, error) {
	return func(f *File) ([]Splice, error) {
		var all []Splice
		for _, img := range f.FindImages(opts) {
			full := img.Repository
			if img.Registry != "" {
				full = img.Registry + "/" + img.Repository
			}
			if !imageref.SameRepository(full, repo) && !(img.Name != "" && imageref.SameRepository(img.Name, repo)) {
				continue
			}
			sp, err := f.SetImage(img, tag, digest)
			if err != nil {
				return nil, err
			}
			all = append(all, sp...)
		}
		return all, nil
	}
}

func TestGolden(t *testing.T) {
	tests := []struct {
		name string
		edit func(*File) ([]Splice, error)
	}{
		{"comment-on-line", setImage("ghcr.io/acme/web", "1.1.0", "", FindOptions{})},
		{"quotes", setImage("ghcr.io/acme/web", "1.10", "", FindOptions{})},
		{"crlf", setImage("ghcr.io/acme/web", "1.1.0", digestA, FindOptions{})},
		{"bom", setImage("nginx", "1.26", "", FindOptions{})},
		{"multi-document", setImage("nginx", "1.26", digestB, FindOptions{})},
		{"flow-mapping", setImage("nginx", "1.26", "", FindOptions{})},
		{"block-scalars", setImage("nginx", "1.26", "", FindOptions{})},
		{"anchors", setImage("nginx", "1.26", "", FindOptions{})},
		{"alias-merge", setImage("ghcr.io/acme/web", "1.1.0", "", FindOptions{})},
		{"alias-sequence", setImage("ghcr.io/acme/web", "1.10", "", FindOptions{})},
		{"tabs-in-comments", setImage("nginx", "2024", "", FindOptions{})},
		{"number-tag", func(f *File) ([]Splice, error) {
			a, err := setImage("nginx", "1.10", "", FindOptions{})(f)
			if err != nil {
				return nil, err
			}
			b, err := setImage("ghcr.io/acme/web", "3", "", FindOptions{})(f)
			return append(a, b...), err
		}},
		{"kustomize-add-digest", func(f *File) ([]Splice, error) {
			a, err := setImage("ghcr.io/acme/web", "", digestA, FindOptions{})(f)
			if err != nil {
				return nil, err
			}
			b, err := setImage("ghcr.io/acme/api", "2.0", digestB, FindOptions{})(f)
			return append(a, b...), err
		}},
		{"kustomize-add-entry", func(f *File) ([]Splice, error) {
			sp, err := f.AppendMapping(0, "images", []Field{{"name", "ghcr.io/acme/web"}, {"newTag", "1.10"}, {"digest", digestA}})
			return []Splice{sp}, err
		}},
		{"helm-values", func(f *File) ([]Splice, error) {
			a, err := setImage("ghcr.io/acme/web", "1.1", "", FindOptions{})(f)
			if err != nil {
				return nil, err
			}
			b, err := setImage("ghcr.io/acme/worker", "1.10", "", FindOptions{})(f)
			if err != nil {
				return nil, err
			}
			c, err := setImage("ghcr.io/acme/side", "4", "", FindOptions{})(f)
			return append(append(a, b...), c...), err
		}},
		{"corpus-deployment", setImage("ghcr.io/stefanprodan/podinfo", "6.15.0", digestA, FindOptions{})},
		{"corpus-cronjob", setImage("ghcr.io/stefanprodan/podinfo", "6.15.0", "", FindOptions{})},
		{"corpus-statefulset", setImage("ghcr.io/stefanprodan/podinfo", "6.15.0", "", FindOptions{})},
		{"corpus-values", setImage("ghcr.io/stefanprodan/podinfo", "6.15", "", FindOptions{})},
		{"corpus-helmrelease", setImage("public.ecr.aws/docker/library/redis", "8.6.3", "", FindOptions{})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join("testdata", "golden", tt.name)
			in, err := os.ReadFile(filepath.Join(dir, "in.yaml"))
			require.NoError(t, err)
			f, err := Parse(tt.name+"/in.yaml", in)
			require.NoError(t, err)
			splices, err := tt.edit(f)
			require.NoError(t, err)
			require.NotEmpty(t, splices, "the case must change something")
			got, err := f.Apply(splices...)
			require.NoError(t, err)
			outPath := filepath.Join(dir, "out.yaml")
			if *update {
				require.NoError(t, os.WriteFile(outPath, got, 0o644))
			}
			want, err := os.ReadFile(outPath)
			require.NoError(t, err)
			require.Equal(t, string(want), string(got))
			// Setting the same image again changes nothing more.
			g, err := Parse(tt.name+"/out.yaml", got)
			require.NoError(t, err)
			again, err := tt.edit(g)
			require.NoError(t, err)
			if tt.name != "kustomize-add-entry" {
				require.Empty(t, again, "the edit is idempotent")
			}
		})
	}
}
