package semver_test

import (
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/internal/gittest"
	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
)

// signingKeys are the keys a pipeline author may give, each made by the real
// tool: OpenPGP (gpg) and SSH (ssh-keygen), RSA and elliptic, with and
// without a passphrase.
func signingKeys(t *testing.T) map[string]struct {
	key        gittest.SigningKey
	passphrase string
} {
	type k = struct {
		key        gittest.SigningKey
		passphrase string
	}
	return map[string]k{
		"openpgp ed25519 with passphrase": {gittest.NewGPGKey(t, gittest.GPGOptions{Passphrase: "gpg pass phrase"}), "gpg pass phrase"},
		"openpgp rsa2048":                 {gittest.NewGPGKey(t, gittest.GPGOptions{Algo: "rsa2048"}), ""},
		"ssh ed25519 with passphrase":     {gittest.NewSSHSigningKey(t, "ed25519", 0, "ssh pass phrase"), "ssh pass phrase"},
		"ssh rsa3072":                     {gittest.NewSSHSigningKey(t, "rsa", 3072, ""), ""},
		"ssh ecdsa":                       {gittest.NewSSHSigningKey(t, "ecdsa", 256, ""), ""},
	}
}

// TestSignedBumpsVerifyWithGit bumps with each kind of key through both
// drivers: git verify-commit (driver git) and git verify-tag (driver tags),
// with gpg or an allowed signers file trusting only that key, accept what
// was pushed, and refuse the unsigned seed. The log and the metadata name the
// key's fingerprint; neither the key nor its passphrase is printed.
func TestSignedBumpsVerifyWithGit(t *testing.T) {
	t.Parallel()
	for name, k := range signingKeys(t) {
		for _, driver := range []string{"git", "tags"} {
			t.Run(name+"/"+driver, func(t *testing.T) {
				t.Parallel()
				srv := gittest.New(t)
				srv.CreateRepo(t, "app")
				seed := srv.Commit(t, "app", "version", map[string]string{"version": "1.0.0"}, "seed")
				src := source(map[string]any{"uri": srv.HTTPURL("app"), "driver": driver, "signing_key": k.key.Private})
				if k.passphrase != "" {
					src["signing_key_passphrase"] = k.passphrase
				}
				if driver == "tags" {
					delete(src, "file")
					srv.Tag(t, "app", "v1.0.0", seed, "1.0.0")
				}
				var out rt.Response
				res := rt.Run(t, "out", t.TempDir(), map[string]any{"source": src, "params": map[string]any{"bump": "patch"}}, rt.Env("release", "3"))
				res.OK(t, &out)
				res.NoSecrets(t, k.key.Private, k.passphrase)
				require.Equal(t, "1.0.1", out.Version["number"])
				require.Equal(t, k.key.Fingerprint, out.Meta1("signing_key_fingerprint"))
				require.Contains(t, res.Stderr, k.key.Fingerprint, "the log names the key")

				verb, rev, header := "verify-commit", srv.Tip(t, "app", "version"), "\ngpgsig -----BEGIN "
				if driver == "tags" {
					verb, rev, header = "verify-tag", "v1.0.1", "Concourse-Build-URL: https://ci.example.com/teams/main/pipelines/app/jobs/release/builds/3\n-----BEGIN "
				}
				said := srv.MustVerify(t, "app", verb, rev, k.key)
				require.Regexp(t, `Good( "git")? signature`, said)
				require.Contains(t, srv.Git(t, "app", "cat-file", "-p", rev), header, "the signature where git puts it: a gpgsig header, or after a tag's message")
				_, err := srv.Verify("app", "verify-commit", seed, k.key)
				require.Error(t, err, "the unsigned seed is refused: the check can fail")
			})
		}
	}
}

// TestSSHSignatureHasGitsLayout compares a commit our put signed with an SSH
// key to one git itself signs with the same key (gpg.format=ssh, git
// commit-tree -S): the gpgsig headers have the same shape, line for line.
func TestSSHSignatureHasGitsLayout(t *testing.T) {
	t.Parallel()
	key := gittest.NewSSHSigningKey(t, "ed25519", 0, "")
	srv := gittest.New(t)
	srv.CreateRepo(t, "app")
	srv.Commit(t, "app", "version", map[string]string{"version": "1.0.0"}, "seed")
	src := source(map[string]any{"uri": srv.HTTPURL("app"), "signing_key": key.Private})
	rt.Run(t, "out", t.TempDir(), map[string]any{"source": src, "params": map[string]any{"bump": "patch"}}, nil).OK(t, nil)
	ours := srv.Git(t, "app", "cat-file", "commit", "version")

	gits := srv.SignWithGit(t, "app", "version", key)
	shape := func(commit string) string {
		_, rest, _ := strings.Cut(commit, "\ngpgsig ")
		sig, _, _ := strings.Cut(rest, "\n\n")
		return regexp.MustCompile(`[A-Za-z0-9+/=]`).ReplaceAllString(sig, "x")
	}
	require.NotEmpty(t, shape(gits))
	require.Equal(t, shape(gits), shape(ours))
}

// TestSignedCommitRemadeAfterLostRace makes another writer push to the
// branch just before our push: the put re-applies the bump on their tip, and
// the commit it makes then is signed too.
func TestSignedCommitRemadeAfterLostRace(t *testing.T) {
	t.Parallel()
	key := gittest.NewSSHSigningKey(t, "ed25519", 0, "")
	var srv *gittest.Server
	var raced atomic.Bool
	srv = gittest.New(t, gittest.WithHTTPFault(func(r *http.Request) gittest.Fault {
		if gittest.Service(r) == "git-receive-pack" && !raced.Swap(true) {
			if _, err := srv.CommitErr("app", "version", map[string]string{"version": "1.0.5"}, "bump by hand"); err != nil {
				t.Errorf("the other writer's commit: %v", err)
			}
		}
		return gittest.Fault{}
	}))
	srv.CreateRepo(t, "app")
	srv.Commit(t, "app", "version", map[string]string{"version": "1.0.0"}, "seed")
	src := source(map[string]any{"uri": srv.HTTPURL("app"), "signing_key": key.Private})
	var out rt.Response
	res := rt.Run(t, "out", t.TempDir(), map[string]any{"source": src, "params": map[string]any{"bump": "patch"}}, nil)
	res.OK(t, &out)
	require.True(t, raced.Load())
	require.Contains(t, res.Stderr, "another writer updated version first")
	require.Equal(t, "1.0.6", out.Version["number"], "the bump re-applied on their tip")
	log := srv.Log(t, "app", "version")
	require.Len(t, log, 3)
	require.Equal(t, "bump by hand", strings.TrimSpace(log[1].Message))
	srv.MustVerify(t, "app", "verify-commit", "version", key)
	require.Equal(t, srv.Tip(t, "app", "version"), out.Meta1("commit"))
}

// TestSigningKeysThatCannotSignFailBeforeAnyRequest gives out keys that
// cannot sign: each fails naming the field and the problem, before any
// request to the server, and prints neither the key nor the passphrase.
func TestSigningKeysThatCannotSignFailBeforeAnyRequest(t *testing.T) {
	t.Parallel()
	gpgEncrypted := gittest.NewGPGKey(t, gittest.GPGOptions{Passphrase: "right gpg pass"})
	sshEncrypted := gittest.NewSSHSigningKey(t, "ed25519", 0, "right ssh pass")
	tests := []struct {
		name, key, passphrase string
		want                  []string
	}{
		{name: "openpgp encrypted without passphrase", key: gpgEncrypted.Private, want: []string{"source.signing_key is encrypted", "set source.signing_key_passphrase"}},
		{name: "openpgp wrong passphrase", key: gpgEncrypted.Private, passphrase: "wrong gpg pass", want: []string{"source.signing_key_passphrase does not decrypt source.signing_key"}},
		{name: "ssh encrypted without passphrase", key: sshEncrypted.Private, want: []string{"source.signing_key is encrypted", "set source.signing_key_passphrase"}},
		{name: "ssh wrong passphrase", key: sshEncrypted.Private, passphrase: "wrong ssh pass", want: []string{"source.signing_key_passphrase does not decrypt source.signing_key"}},
		{name: "openpgp public key", key: gpgEncrypted.Public, want: []string{"source.signing_key is an OpenPGP public key", "--export-secret-keys"}},
		{name: "ssh public key", key: sshEncrypted.Public, want: []string{"source.signing_key is an SSH public key", "private key"}},
		{name: "openpgp expired", key: gittest.NewGPGKey(t, gittest.GPGOptions{Expired: true}).Private, want: []string{"source.signing_key", "expired on 2020-01-02"}},
		{name: "openpgp revoked", key: gittest.NewGPGKey(t, gittest.GPGOptions{Revoked: true}).Private, want: []string{"source.signing_key", "is revoked"}},
		{name: "openpgp rsa1024", key: gittest.NewGPGKey(t, gittest.GPGOptions{Algo: "rsa1024"}).Private, want: []string{"source.signing_key is a 1024-bit RSA key", "at least 2048"}},
		{name: "ssh rsa1024", key: gittest.NewSSHSigningKey(t, "rsa", 1024, "").Private, want: []string{"source.signing_key is a 1024-bit RSA key", "at least 2048"}},
		{name: "not a key", key: "hunter2-not-a-key-at-all", want: []string{"source.signing_key is neither an ASCII-armoured OpenPGP private key nor an OpenSSH private key"}},
		{name: "passphrase without key", passphrase: "lonely passphrase", want: []string{"source.signing_key_passphrase is set but source.signing_key is not"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newCountingServer(t)
			srv.CreateRepo(t, "app")
			tip := srv.Commit(t, "app", "version", map[string]string{"version": "1.0.0"}, "seed")
			src := source(map[string]any{"uri": srv.HTTPURL("app")})
			if tc.key != "" {
				src["signing_key"] = tc.key
			}
			if tc.passphrase != "" {
				src["signing_key_passphrase"] = tc.passphrase
			}
			res := rt.Run(t, "out", t.TempDir(), map[string]any{"source": src, "params": map[string]any{"bump": "patch"}}, nil)
			res.Fails(t, tc.want...)
			res.NoSecrets(t, tc.key, tc.passphrase)
			require.Zero(t, srv.requests.Load(), "no request before the key is checked")
			require.Equal(t, tip, srv.Tip(t, "app", "version"), "nothing pushed")
		})
	}
}

// TestCheckDoesNotReadTheSigningKey: only out signs, so check (run every
// minute) neither parses nor decrypts signing_key, and a key that expires
// or is broken does not stop the resource from being checked.
func TestCheckDoesNotReadTheSigningKey(t *testing.T) {
	t.Parallel()
	srv := gittest.New(t)
	srv.CreateRepo(t, "app")
	srv.Commit(t, "app", "version", map[string]string{"version": "1.0.0"}, "seed")
	src := source(map[string]any{"uri": srv.HTTPURL("app"), "signing_key": "not a key", "signing_key_passphrase": "unused passphrase"})
	var versions []map[string]string
	rt.Run(t, "check", "", map[string]any{"source": src}, nil).OK(t, &versions)
	require.Equal(t, []map[string]string{{"number": "1.0.0"}}, versions)
	rt.Run(t, "out", t.TempDir(), map[string]any{"source": src, "params": map[string]any{"bump": "patch"}}, nil).Fails(t, "source.signing_key is neither")
}
