package manifest

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSetterOwnsField: a value marked {"$imagepolicy": "ns:name"} is the
// policy's image, whatever it held: a put with that setter writes the
// image into every field so marked, a whole reference, or the part a
// :name, :tag or :digest marker names, as Flux's image automation does.
// Unmarked references stay as they are.
func TestSetterOwnsField(t *testing.T) {
	const (
		web    = `{"$imagepolicy": "flux-system:web"}`
		name   = `{"$imagepolicy": "flux-system:web:name"}`
		tag    = `{"$imagepolicy": "flux-system:web:tag"}`
		digest = `{"$imagepolicy": "flux-system:web:digest"}`
	)
	dA, dB := "sha256:"+strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64)
	ghcr11 := Target{Setter: "flux-system:web", Repository: "ghcr.io/acme/web", Tag: "1.1"}
	for _, tc := range []struct {
		name       string
		file, want string
		target     Target
		log        string
	}{
		{"a registry move", "containers:\n- image: docker.io/acme/web:1.0 # " + web + "\n",
			"containers:\n- image: ghcr.io/acme/web:1.1 # " + web + "\n", ghcr11, ""},
		{"another repository altogether", "spec:\n  values:\n    img: quay.io/old/thing:0.1@" + dA + " # " + web + "\n",
			"spec:\n  values:\n    img: ghcr.io/acme/web:1.1 # " + web + "\n", ghcr11, ""},
		{"the same repository keeps its spelling", "containers:\n- image: acme/web:1.0 # " + web + "\n",
			"containers:\n- image: acme/web:1.1 # " + web + "\n", Target{Setter: "flux-system:web", Repository: "docker.io/acme/web", Tag: "1.1"}, ""},
		{"unmarked references of the same image stay", "containers:\n- image: docker.io/acme/web:1.0 # " + web + "\n- image: docker.io/acme/web:1.0\n",
			"containers:\n- image: ghcr.io/acme/web:1.1 # " + web + "\n- image: docker.io/acme/web:1.0\n", ghcr11, ""},
		{"another policy's marker stays", "a: docker.io/acme/web:1.0 # {\"$imagepolicy\": \"flux-system:api\"}\nb: x:1 # " + web + "\n",
			"a: docker.io/acme/web:1.0 # {\"$imagepolicy\": \"flux-system:api\"}\nb: ghcr.io/acme/web:1.1 # " + web + "\n", ghcr11, ""},
		{"helm parts: name, tag and a stale digest cleared",
			"image:\n  repository: docker.io/acme/web # " + name + "\n  tag: \"1.0\" # " + tag + "\n  digest: " + dA + " # " + digest + "\n" +
				"other:\n  repository: docker.io/acme/web\n  tag: \"1.0\"\n",
			"image:\n  repository: ghcr.io/acme/web # " + name + "\n  tag: \"1.1\" # " + tag + "\n  digest: \"\" # " + digest + "\n" +
				"other:\n  repository: docker.io/acme/web\n  tag: \"1.0\"\n", ghcr11, ""},
		{"a digest alone: the tag stays",
			"image:\n  repository: ghcr.io/acme/web # " + name + "\n  tag: \"1.1\" # " + tag + "\n  digest: \"\" # " + digest + "\nwhole: ghcr.io/acme/web:1.1 # " + web + "\n",
			"image:\n  repository: ghcr.io/acme/web # " + name + "\n  tag: \"1.1\" # " + tag + "\n  digest: \"" + dB + "\" # " + digest + "\nwhole: ghcr.io/acme/web:1.1@" + dB + " # " + web + "\n",
			Target{Setter: "flux-system:web", Digest: dB}, ""},
		{"no repository given: a name marker stays", "image:\n  name: docker.io/acme/web # " + name + "\n  version: v1 # " + tag + "\n",
			"image:\n  name: docker.io/acme/web # " + name + "\n  version: v2 # " + tag + "\n", Target{Setter: "flux-system:web", Tag: "v2"}, ""},
		{"kustomize entry", "images:\n- name: acme/web\n  newName: docker.io/acme/web # " + name + "\n  newTag: \"1.0\" # " + tag + "\n",
			"images:\n- name: acme/web\n  newName: ghcr.io/acme/web # " + name + "\n  newTag: \"1.1\" # " + tag + "\n", ghcr11, ""},
		{"an unmarked digest beside a marked tag stays, with a warning",
			"image:\n  repository: docker.io/acme/web\n  tag: \"1.0\" # " + tag + "\n  digest: " + dA + "\n",
			"image:\n  repository: docker.io/acme/web\n  tag: \"1.1\" # " + tag + "\n  digest: " + dA + "\n", ghcr11,
			"warning: values.yaml: image.digest is not marked for setter flux-system:web and still pins"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := "values.yaml"
			if strings.HasPrefix(tc.file, "images:") {
				file = "kustomization.yaml"
			}
			tree := mapTree{file: tc.file}
			var log bytes.Buffer
			_, err := (&Editor{Tree: tree, Log: &log}).Apply([]Target{tc.target}, pathSet{})
			require.NoError(t, err)
			require.Equal(t, tc.want, tree[file])
			if tc.log != "" {
				require.Contains(t, log.String(), tc.log)
			}
		})
	}
}

// TestSetterChangeNamesTheMove: a change that moves a reference to another
// repository says so in its new value, for the commit message and trailers.
func TestSetterChangeNamesTheMove(t *testing.T) {
	tree := mapTree{"d.yaml": "containers:\n- image: docker.io/acme/web:1.0 # {\"$imagepolicy\": \"flux-system:web\"}\n"}
	changes, err := (&Editor{Tree: tree}).Apply([]Target{{Setter: "flux-system:web", Repository: "ghcr.io/acme/web", Tag: "1.1"}}, pathSet{})
	require.NoError(t, err)
	require.Len(t, changes, 1)
	require.Equal(t, "docker.io/acme/web", changes[0].Repository)
	require.Equal(t, "1.0", changes[0].Old)
	require.Equal(t, "ghcr.io/acme/web:1.1", changes[0].New)
	require.Equal(t, "docker.io/acme/web:1.0 -> ghcr.io/acme/web:1.1", imageLine(changes[0]))
}
