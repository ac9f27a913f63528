package manifest_test

import (
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/internal/gittest"
)

const signedSeed = "spec:\n  containers:\n  - image: acme/web:1.0\n"

// TestSignedPutVerifiesWithGit puts an image with an OpenPGP key (gpg, with
// a passphrase) and with an SSH key: git verify-commit, trusting only that
// key, accepts the pushed commit, also the one a put re-made on another
// writer's tip after losing the push race; the metadata and log name the
// key's fingerprint and never the key.
func TestSignedPutVerifiesWithGit(t *testing.T) {
	t.Parallel()
	const pass = "manifest gpg passphrase"
	keys := map[string]struct {
		key        gittest.SigningKey
		passphrase string
	}{
		"openpgp": {gittest.NewGPGKey(t, gittest.GPGOptions{Passphrase: pass}), pass},
		"ssh":     {gittest.NewSSHSigningKey(t, "ed25519", 0, ""), ""},
	}
	for name, k := range keys {
		for _, race := range []bool{false, true} {
			label := name
			if race {
				label += "/after a lost race"
			}
			t.Run(label, func(t *testing.T) {
				t.Parallel()
				var srv *gittest.Server
				var raced atomic.Bool
				srv = gittest.New(t, gittest.WithHTTPFault(func(r *http.Request) gittest.Fault {
					if race && gittest.Service(r) == "git-receive-pack" && !raced.Swap(true) {
						if _, err := srv.CommitErr("deploy", "main", map[string]string{"other.yaml": "x: 1\n"}, "another writer"); err != nil {
							t.Errorf("the other writer's commit: %v", err)
						}
					}
					return gittest.Fault{}
				}))
				srv.CreateRepo(t, "deploy")
				seed := srv.Commit(t, "deploy", "main", map[string]string{"web.yaml": signedSeed}, "seed")
				fx := &fixture{srv: srv, seed: seed}
				src := fx.source(map[string]any{"signing_key": k.key.Private})
				if k.passphrase != "" {
					src["signing_key_passphrase"] = k.passphrase
				}
				out, res := fx.put(t, src, map[string]any{"images": []map[string]any{{"repository": "acme/web", "tag": "1.1"}}})
				res.OK(t, nil)
				res.NoSecrets(t, k.key.Private, k.passphrase)
				fx.requireFile(t, "web.yaml", "spec:\n  containers:\n  - image: acme/web:1.1\n")
				tip := srv.Tip(t, "deploy", "main")
				require.Equal(t, tip, out.Meta1("commit"))
				require.Equal(t, k.key.Fingerprint, out.Meta1("signing_key_fingerprint"))
				require.Contains(t, res.Stderr, k.key.Fingerprint)
				require.Regexp(t, `Good( "git")? signature`, srv.MustVerify(t, "deploy", "verify-commit", tip, k.key))
				if race {
					require.True(t, raced.Load())
					require.Contains(t, res.Stderr, "another writer updated main first")
					log := srv.Log(t, "deploy", "main")
					require.Len(t, log, 3, "ours on top of the other writer's")
					_, err := srv.Verify("deploy", "verify-commit", log[1].SHA, k.key)
					require.Error(t, err, "the other writer's commit is unsigned, and refused")
				}
			})
		}
	}
}

// TestPutWithAKeyThatCannotSignPushesNothing: a wrong passphrase fails the
// put before any request, naming the field, printing neither secret.
func TestPutWithAKeyThatCannotSignPushesNothing(t *testing.T) {
	t.Parallel()
	key := gittest.NewSSHSigningKey(t, "ed25519", 0, "right passphrase")
	fx, requests := newCountingFixture(t)
	src := fx.source(map[string]any{"signing_key": key.Private, "signing_key_passphrase": "wrong passphrase"})
	_, res := fx.put(t, src, map[string]any{"images": []map[string]any{{"repository": "acme/web", "tag": "1.1"}}})
	res.Fails(t, "source.signing_key_passphrase does not decrypt source.signing_key")
	res.NoSecrets(t, key.Private, "wrong passphrase")
	require.Zero(t, requests.Load())
	require.Equal(t, fx.seed, fx.srv.Tip(t, "deploy", "main"))
}
