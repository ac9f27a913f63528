package manifest_test

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestManifestSetterOwnsField: through the binary, a put with a setter
// writes the policy's image into every value marked for it, whatever it
// held (a registry move: docker.io/acme/web:1.0 becomes
// ghcr.io/acme/web:1.1), the :name, :tag and :digest markers each their
// part, and leaves the unmarked references to the same image as they are,
// byte for byte; a second put with a digest alone keeps the tags.
func TestManifestSetterOwnsField(t *testing.T) {
	t.Parallel()
	const (
		web    = `{"$imagepolicy": "flux-system:web"}`
		name   = `{"$imagepolicy": "flux-system:web:name"}`
		tag    = `{"$imagepolicy": "flux-system:web:tag"}`
		digest = `{"$imagepolicy": "flux-system:web:digest"}`
	)
	deploy := func(marked, unmarked string) string {
		return "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n" +
			"      - name: web\n        image: " + marked + " # " + web + "\n" +
			"      - name: sidecar\n        image: " + unmarked + "   # same image, unmarked\n"
	}
	values := func(repo, tg, dg string) string {
		return "image:\n  repository: " + repo + " # " + name + "\n  tag: " + tg + " # " + tag + "\n  digest: " + dg + " # " + digest + "\n" +
			"other:\n  repository: docker.io/acme/web\n  tag: \"1.0\"\n"
	}
	kustomization := func(repo, tg string) string {
		return "resources:\n- deploy.yaml\nimages:\n- name: acme/web\n  newName: " + repo + " # " + name + "\n  newTag: " + tg + " # " + tag + "\n"
	}
	release := func(img string) string {
		return "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: web\nspec:\n  values:\n    img: " + img + " # " + web + "\n"
	}
	fx := newFixture(t, map[string]string{
		"app/deploy.yaml":        deploy("docker.io/acme/web:1.0", "docker.io/acme/web:1.0"),
		"app/values.yaml":        values("docker.io/acme/web", `"1.0"`, digestA),
		"app/kustomization.yaml": kustomization("docker.io/acme/web", `"1.0"`),
		"app/release.yaml":       release("quay.io/legacy/web-old:0.9@" + digestA),
	})

	out, res := fx.put(t, fx.source(nil), map[string]any{"images": []map[string]any{
		{"setter": "flux-system:web", "repository": "ghcr.io/acme/web", "tag": "1.1"}}})
	res.OK(t, nil)
	fx.requireFile(t, "app/deploy.yaml", deploy("ghcr.io/acme/web:1.1", "docker.io/acme/web:1.0"))
	fx.requireFile(t, "app/values.yaml", values("ghcr.io/acme/web", `"1.1"`, `""`))
	fx.requireFile(t, "app/kustomization.yaml", kustomization("ghcr.io/acme/web", `"1.1"`))
	fx.requireFile(t, "app/release.yaml", release("ghcr.io/acme/web:1.1"))
	require.Contains(t, out.Meta("image"), "docker.io/acme/web:1.0 -> ghcr.io/acme/web:1.1", "the move is named")
	require.Contains(t, out.Meta("image"), "quay.io/legacy/web-old:0.9@"+digestA+" -> ghcr.io/acme/web:1.1")
	require.Contains(t, fx.srv.Log(t, "deploy", "main")[0].Message, "Image: docker.io/acme/web:1.0 -> ghcr.io/acme/web:1.1")

	// A digest alone: the marked digests and whole references take it, the
	// tags stay.
	_, res = fx.put(t, fx.source(nil), map[string]any{"images": []map[string]any{{"setter": "flux-system:web", "digest": digestB}}})
	res.OK(t, nil)
	fx.requireFile(t, "app/deploy.yaml", deploy("ghcr.io/acme/web:1.1@"+digestB, "docker.io/acme/web:1.0"))
	fx.requireFile(t, "app/values.yaml", values("ghcr.io/acme/web", `"1.1"`, `"`+digestB+`"`))
	fx.requireFile(t, "app/kustomization.yaml", kustomization("ghcr.io/acme/web", `"1.1"`))
	fx.requireFile(t, "app/release.yaml", release("ghcr.io/acme/web:1.1@"+digestB))

	// A setter no value is marked for fails the put, naming the setters there.
	tip := fx.srv.Tip(t, "deploy", "main")
	_, res = fx.put(t, fx.source(nil), map[string]any{"images": []map[string]any{{"setter": "flux-system:api", "tag": "2"}}})
	res.Fails(t, "params.images[0]", "no value in the repository is marked with setter flux-system:api", "flux-system:web")
	require.Equal(t, tip, fx.srv.Tip(t, "deploy", "main"), "nothing pushed by the failing put")
}
