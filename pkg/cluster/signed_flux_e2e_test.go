package cluster_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/gitops-resource/gitops-resource/internal/gittest"
	"github.com/gitops-resource/gitops-resource/internal/proc"
	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
	"github.com/gitops-resource/gitops-resource/internal/testenv/agenttest"
	"github.com/gitops-resource/gitops-resource/pkg/health"
)

// Issue #18: the real Flux source-controller, verifying the tip of the
// branch (GitRepository spec.verify, mode HEAD) with the public key, takes
// the commits a signed manifest put pushes and refuses unsigned ones.

var gitRepositoryGVR = schema.GroupVersionResource{Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "gitrepositories"}

// verifiedGitRepository is agenttest.FluxGitRepository verifying each tip's
// signature with the public keys in Secret signers.
func verifiedGitRepository(url string) string {
	return fmt.Sprintf(`---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: config}
spec:
  url: %s
  interval: 1h
  ref: {branch: main}
  verify: {mode: HEAD, secretRef: {name: signers}}
`, url)
}

func TestFluxVerifiesSignedManifestCommits(t *testing.T) {
	env := cluster(t)
	agenttest.StartFlux(t, env)
	dyn, err := dynamic.NewForConfig(env.Config())
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		// secretKey is the Secret key Flux reads the public key from:
		// *.asc for OpenPGP, *.sshpub for SSH (authorized_keys lines).
		secretKey string
		key       func(t *testing.T) gittest.SigningKey
		// identity is how Flux names the key that verified a commit.
		identity func(k gittest.SigningKey) string
	}{
		{
			name: "openpgp", secretKey: "signer.asc",
			key:      func(t *testing.T) gittest.SigningKey { return gittest.NewGPGKey(t, gittest.GPGOptions{}) },
			identity: func(k gittest.SigningKey) string { return k.Fingerprint[len(k.Fingerprint)-16:] }, // the key ID
		},
		{
			name: "ssh", secretKey: "signer.sshpub",
			key:      func(t *testing.T) gittest.SigningKey { return gittest.NewSSHSigningKey(t, "ed25519", 0, "") },
			identity: func(k gittest.SigningKey) string { return k.Fingerprint },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := tc.key(t)
			f := newAgentFixture(t) // main holds one unsigned commit, made with the git CLI
			initial := f.git.Branches(t, "config")["main"]
			agenttest.Apply(t, env, f.ns, secretYAML("signers", map[string]string{tc.secretKey: key.Public}, nil, false, "")+
				verifiedGitRepository(f.git.HTTPURL("config")))
			repo := &fluxSource{t: t, ri: dyn.Resource(gitRepositoryGVR).Namespace(f.ns)}

			got := repo.await("", "the unsigned first commit refused", refused(initial))
			t.Logf("unsigned first commit: %s", health.Conditions(got))

			signed := func(key gittest.SigningKey, tag string) string {
				var out rt.Response
				res := rt.Run(t, "out", t.TempDir(), map[string]any{
					"source": map[string]any{"kind": "manifest", "uri": f.git.HTTPURL("config"), "branch": "main", "signing_key": key.Private},
					"params": map[string]any{"images": []map[string]any{{"repository": "nginx", "tag": tag}}},
				}, rt.Env("ship", "1"))
				res.OK(t, &out)
				res.NoSecrets(t, key.Private)
				require.Equal(t, key.Fingerprint, out.Meta1("signing_key_fingerprint"))
				return out.Version["ref"]
			}
			sha := signed(key, "1.1")
			got = repo.await(repo.requestReconcile(), "the signed commit "+sha+" verified", verified(sha, tc.identity(key)))
			t.Logf("signed commit: %s", health.Conditions(got))

			byHand := f.git.Commit(t, "config", "main", map[string]string{"deploy/settings.yaml": strings.Replace(settingsConfigMap, "hello", "unsigned", 1)}, "an unsigned change")
			got = repo.await(repo.requestReconcile(), "the unsigned commit "+byHand+" refused", refused(byHand))
			require.Equal(t, "main@sha1:"+sha, artifactRevision(got), "Flux keeps serving the last verified commit")
			t.Logf("unsigned commit on top: %s", health.Conditions(got))

			untrusted := signed(tc.key(t), "1.2")
			got = repo.await(repo.requestReconcile(), "the commit "+untrusted+" signed by another key refused", refused(untrusted))
			require.Equal(t, "main@sha1:"+sha, artifactRevision(got))
			t.Logf("signed by a key not in the Secret: %s", health.Conditions(got))

			// mode HEAD verifies the tip only: the next put signed with the
			// trusted key makes the source Ready again.
			sha = signed(key, "1.3")
			repo.await(repo.requestReconcile(), "the next signed commit "+sha+" verified", verified(sha, tc.identity(key)))
		})
	}
}

// fluxSource is one GitRepository the test watches.
type fluxSource struct {
	t  *testing.T
	ri dynamic.ResourceInterface
}

// requestReconcile stamps reconcile.fluxcd.io/requestedAt, as `flux
// reconcile source git` does, and returns the stamp.
func (s *fluxSource) requestReconcile() string {
	s.t.Helper()
	stamp := time.Now().Format(time.RFC3339Nano)
	patch := fmt.Sprintf(`{"metadata":{"annotations":{"reconcile.fluxcd.io/requestedAt":%q}}}`, stamp)
	_, err := s.ri.Patch(s.t.Context(), "config", types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	require.NoError(s.t, err)
	return stamp
}

// await polls, for a minute at most, until the source-controller has
// handled the reconcile request stamp (any reconcile when stamp is "") and
// done accepts what it reported. (status.observedGeneration is no help: Flux
// leaves it at -1 while the source fails.)
func (s *fluxSource) await(stamp, what string, done func(*unstructured.Unstructured) error) *unstructured.Unstructured {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.t.Context(), time.Minute)
	defer cancel()
	var last *unstructured.Unstructured
	err := proc.Poll(ctx, what, nil, func(ctx context.Context) error {
		obj, err := s.ri.Get(ctx, "config", metav1.GetOptions{})
		if err != nil {
			return err
		}
		last = obj
		if handled, _, _ := unstructured.NestedString(obj.Object, "status", "lastHandledReconcileAt"); handled != stamp && stamp != "" {
			return fmt.Errorf("reconcile request %s not handled yet (last handled: %q)", stamp, handled)
		}
		return done(obj)
	})
	if err != nil {
		status, _, _ := unstructured.NestedMap(last.UnstructuredContent(), "status")
		s.t.Fatalf("%v\nthe GitRepository's status: %v", err, status)
	}
	return last
}

// verified: Ready on sha, whose signature Flux verified with the key named
// identity.
func verified(sha, identity string) func(*unstructured.Unstructured) error {
	return func(obj *unstructured.Unstructured) error {
		v := conditionOf(obj, "SourceVerified")
		switch {
		case conditionOf(obj, "Ready").Status != "True" || artifactRevision(obj) != "main@sha1:"+sha:
			return fmt.Errorf("not Ready on %s: artifact %s, %s", sha, artifactRevision(obj), health.Conditions(obj))
		case v.Status != "True" || !strings.Contains(v.Message, "commit '"+sha+"' with key '"+identity+"'"):
			return fmt.Errorf("want SourceVerified=True for commit %s with key %s, got %s", sha, identity, v)
		}
		return nil
	}
}

// refused: Ready=False because the signature of sha, the tip, did not
// verify, with Flux's reason and message.
func refused(sha string) func(*unstructured.Unstructured) error {
	return func(obj *unstructured.Unstructured) error {
		ready, v := conditionOf(obj, "Ready"), conditionOf(obj, "SourceVerified")
		failed := "signature verification of commit '" + sha + "' failed"
		switch {
		case ready.Status != "False" || ready.Reason != "InvalidCommitSignature" || !strings.Contains(ready.Message, failed):
			return fmt.Errorf("want Ready=False InvalidCommitSignature: %s..., got %s", failed, ready)
		case v.Status != "False" || v.Reason != "InvalidCommitSignature":
			return fmt.Errorf("want SourceVerified=False InvalidCommitSignature, got %s", v)
		}
		return nil
	}
}

func conditionOf(obj *unstructured.Unstructured, typ string) health.Condition {
	for _, c := range health.Conditions(obj) {
		if c.Type == typ {
			return c
		}
	}
	return health.Condition{Type: typ}
}

func artifactRevision(obj *unstructured.Unstructured) string {
	rev, _, _ := unstructured.NestedString(obj.Object, "status", "artifact", "revision")
	return rev
}

// A put in mode flux waiting for a commit the Kustomization's
// GitRepository refuses (its signature does not verify) fails at once with
// Flux's reason, instead of waiting out its timeout on a Kustomization that
// stays Ready on the last verified commit; the signed commit then lands.
func TestFluxModeFailsWhenTheSourceRefusesTheCommit(t *testing.T) {
	f := newAgentFixture(t) // main holds one unsigned commit, made with the git CLI
	agenttest.StartFlux(t, f.env)
	key := gittest.NewSSHSigningKey(t, "ed25519", 0, "")
	url := f.git.HTTPURL("config")
	ks := strings.Replace(agenttest.FluxKustomization("web", url, "./deploy", f.ns, 0), agenttest.FluxGitRepository(url), verifiedGitRepository(url), 1)
	require.Contains(t, ks, "verify:")
	agenttest.Apply(t, f.env, f.ns, secretYAML("signers", map[string]string{"signer.sshpub": key.Public}, nil, false, "")+ks)
	// The pipeline's identity holds only the Role docs/cluster-rbac.md documents.
	sa := f.env.ServiceAccount(t, f.ns, docRole(t, "flux")...)
	src := map[string]any{"kind": "cluster", "mode": "flux", "kubeconfig": string(sa.Kubeconfig), "namespace": f.ns, "kustomization": "web"}
	params := map[string]any{"revision_file": "revision", "timeout": "5m"}

	unsigned := f.git.Branches(t, "config")["main"]
	began := time.Now()
	res := rt.Run(t, "out", f.revisionDir(unsigned), map[string]any{"source": src, "params": params}, nil)
	t.Logf("unsigned commit (%s):\n%s", time.Since(began).Round(time.Second), res.Stderr)
	res.Fails(t, "Kustomization "+f.ns+"/web", "GitRepository "+f.ns+"/config refuses revision "+unsigned, "InvalidCommitSignature",
		"signature verification of commit '"+unsigned+"' failed")
	require.Less(t, time.Since(began), time.Minute, "judged on the source's verdict, not the timeout")

	// With the Role documented before (no list/watch on gitrepositories):
	// a warning, and the Kustomization alone is waited for, as then.
	var before []rbacv1.PolicyRule
	for _, r := range docRole(t, "flux") {
		if !slices.Contains(r.Verbs, "watch") || !slices.Contains(r.Resources, "gitrepositories") {
			before = append(before, r)
		}
	}
	oldSA := f.env.ServiceAccount(t, f.ns, before...)
	oldSrc := maps.Clone(src)
	oldSrc["kubeconfig"] = string(oldSA.Kubeconfig)
	rt.Run(t, "out", f.revisionDir(unsigned), map[string]any{"source": oldSrc, "params": map[string]any{"revision_file": "revision", "timeout": "3s"}}, nil).
		Fails(t, "warning: may not list gitrepositories in namespace "+f.ns, "gave up waiting for revision "+unsigned)

	var out rt.Response
	rt.Run(t, "out", t.TempDir(), map[string]any{
		"source": map[string]any{"kind": "manifest", "uri": url, "branch": "main", "signing_key": key.Private},
		"params": map[string]any{"images": []map[string]any{{"repository": "nginx", "tag": "1.1"}}},
	}, rt.Env("ship", "1")).OK(t, &out)
	signed := out.Version["ref"]
	res = rt.Run(t, "out", f.revisionDir(signed), map[string]any{"source": src, "params": params}, nil)
	t.Logf("signed commit:\n%s", res.Stderr)
	res.OK(t, &out)
	require.Equal(t, "main@sha1:"+signed, out.Version["revision"])
	require.Equal(t, "nginx:1.1", f.image())

	// The case of the issue: an unsigned commit on top, while the
	// Kustomization stays Ready on the signed one.
	byHand := f.git.Commit(t, "config", "main", map[string]string{"deploy/settings.yaml": strings.Replace(settingsConfigMap, "hello", "unsigned", 1)}, "an unsigned change")
	began = time.Now()
	res = rt.Run(t, "out", f.revisionDir(byHand), map[string]any{"source": src, "params": params}, nil)
	t.Logf("unsigned commit on top (%s):\n%s", time.Since(began).Round(time.Second), res.Stderr)
	res.Fails(t, "GitRepository "+f.ns+"/config refuses revision "+byHand, "InvalidCommitSignature")
	require.Less(t, time.Since(began), time.Minute, "judged on the source's verdict, not the timeout")
}
